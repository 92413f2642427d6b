#!/usr/bin/env bash
# A throwaway single-node SLURM cluster from Debian's packages, for the SLURM test and CI.
#
#   tests/slurm/cluster.sh install      apt-get install slurmctld slurmd slurm-client munge (root, if missing)
#   tests/slurm/cluster.sh start DIR    write DIR/slurm.conf + state dirs, start munged, slurmctld, slurmd
#                                       in the foreground of background shells (no systemd), wait until the
#                                       node is idle; prints the environment to use it:
#                                       `export SLURM_CONF=DIR/slurm.conf PATH=DIR/bin:$PATH`
#   tests/slurm/cluster.sh stop DIR     stop exactly the PIDs `start` recorded in DIR/pids
#
# Everything (config, munge key and socket, spool, state, logs) lives under DIR; the ports are free
# ones picked at start, so it runs beside a real SLURM or a second copy of itself.
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge)
NODE=fdnode
PARTITION=${FEATDRIFT_SLURM_PARTITION:-cpu}

die() { echo "cluster.sh: $*" >&2; exit 1; }

have_bins() { [[ -x /usr/sbin/slurmctld && -x /usr/sbin/slurmd && -x /usr/sbin/munged ]] && command -v sbatch >/dev/null && command -v mungekey >/dev/null; }

install() {
    have_bins && return 0
    [[ $(id -u) == 0 ]] || die "installing ${PKGS[*]} needs root"
    command -v apt-get >/dev/null || die "no apt-get to install ${PKGS[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
    # The packages' own services must not run (no systemd here anyway; stop any that did start).
    have_bins || die "packages installed but binaries missing"
}

free_port() { "$(command -v python3 || command -v python3.11)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
    local dir=$1
    have_bins || die "SLURM is not installed (run: $0 install)"
    mkdir -p "$dir"/{munge,spool,state,log}
    dir=$(cd "$dir" && pwd)
    [[ -e $dir/pids ]] && die "$dir/pids exists: a cluster may be running there (run: $0 stop $dir)"
    chmod 700 "$dir/munge"
    local host cpus mem ctld_port d_port
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    ctld_port=$(free_port)
    d_port=$(free_port)
    while [[ $d_port == "$ctld_port" ]]; do d_port=$(free_port); done

    # munge: own key, socket and pid file.
    mungekey --create --force --keyfile "$dir/munge/munge.key" 2>/dev/null \
        || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none
    chmod 400 "$dir/munge/munge.key"

    cat >"$dir/slurm.conf" <<CONF
# Written by tests/slurm/cluster.sh: one node, no accounting database, no cgroups.
ClusterName=featdrift-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/state/slurmctld.pid
SlurmdPidFile=$dir/spool/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# Snakemake's executor polls with squeue; finished jobs must stay visible well past its first
# check (the plugin wants MinJobAge >= 3 x --slurm-init-seconds-before-status-checks).
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

    # snakemake-executor-plugin-slurm-jobstep drops every SLURM_* variable, SLURM_CONF included,
    # before its nested `srun`; with no /etc/slurm/slurm.conf that srun finds no cluster. An `srun`
    # first on PATH that restores SLURM_CONF keeps this cluster out of /etc.
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nexport SLURM_CONF=%s\nexec /usr/bin/srun "$@"\n' "$dir/slurm.conf" >"$dir/bin/srun"
    chmod +x "$dir/bin/srun"

    export SLURM_CONF=$dir/slurm.conf
    : >"$dir/pids"
    nohup /usr/sbin/munged --foreground --force --key-file "$dir/munge/munge.key" \
        --socket "$dir/munge/munge.socket" --pid-file "$dir/munge/munged.pid" \
        --seed-file "$dir/munge/munged.seed" --log-file "$dir/log/munged.log" \
        >"$dir/log/munged.out" 2>&1 &
    echo "munged $!" >>"$dir/pids"
    for _ in $(seq 50); do [[ -S $dir/munge/munge.socket ]] && break; sleep 0.1; done
    [[ -S $dir/munge/munge.socket ]] || die "munged did not start: $(tail -3 "$dir/log/munged.out" "$dir/log/munged.log" 2>/dev/null)"

    nohup /usr/sbin/slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
    echo "slurmctld $!" >>"$dir/pids"
    for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
    scontrol ping >/dev/null 2>&1 || die "slurmctld did not answer: $(tail -5 "$dir/log/slurmctld.log" 2>/dev/null)"

    nohup /usr/sbin/slurmd -D -N "$NODE" -f "$dir/slurm.conf" >"$dir/log/slurmd.out" 2>&1 &
    echo "slurmd $!" >>"$dir/pids"
    local state=""
    for _ in $(seq 150); do
        state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
        [[ $state == idle ]] && break
        sleep 0.2
    done
    [[ $state == idle ]] || die "node $NODE is '$state', not idle: $(tail -5 "$dir/log/slurmd.log" 2>/dev/null)"
    echo "export SLURM_CONF=$dir/slurm.conf PATH=$dir/bin:\$PATH"
}

stop() {
    local dir=$1
    [[ -f $dir/pids ]] || { echo "cluster.sh: nothing recorded in $dir/pids" >&2; return 0; }
    # Reverse order: slurmd, slurmctld, munged. Only the PIDs this script started.
    local name pid
    while read -r name pid; do
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    done < <(tac "$dir/pids")
    rm -f "$dir/pids"
}

case ${1:-} in
    install) install ;;
    start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
