"""The tiny workflow through a real single-node SLURM cluster (Debian's packages, started here).

Skipped with a reason where SLURM can't be installed or started (not root, no apt-get).
CI (.ci/run) installs the packages first, so there it runs. Start/stop by hand:
    tests/slurm/cluster.sh start /tmp/fd-slurm; ...; tests/slurm/cluster.sh stop /tmp/fd-slurm
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, TEST_CONFIG, snakemake
from featdrift.tasks.registry import IN_DOMAIN

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
# Part of the session's local run (conftest.tiny_run): every task's data (side by side), the pretraining
# corpus and the base model. Under SLURM a job is seen done only at the plugin's next status check (1 s,
# then +10 s per empty poll), so each round of jobs costs ~12 s however short: the lm-eval task files (one
# more job per task) and the base evaluation (a fourth DAG level) stay out; the claim here, the SLURM
# executor gives the local run's bytes, needs neither.
_DATA = yaml.safe_load(TEST_CONFIG.read_text())["data"]
TASKS = [IN_DOMAIN, *_DATA["ood_tasks"], *_DATA["heldout_tasks"]]
TARGETS = ["results/models/base.lineage.json", *(f"results/data/{t}/lineage.json" for t in TASKS)]


def _installed() -> bool:
    return all(Path(p).exists() for p in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged")) and bool(
        shutil.which("sbatch")
    )


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if not _installed():
        if os.geteuid() != 0:
            pytest.skip("SLURM is not installed and installing it needs root")
        if not shutil.which("apt-get"):
            pytest.skip("SLURM is not installed and there is no apt-get to install it")
        t0 = time.monotonic()
        proc = subprocess.run([str(CLUSTER), "install"], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"could not install SLURM: {proc.stderr.strip()[-500:]}")
        print(f"SLURM install: {time.monotonic() - t0:.1f} s")
    state = tmp_path_factory.mktemp("slurm")
    t0 = time.monotonic()
    proc = subprocess.run([str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    if proc.returncode != 0:
        subprocess.run([str(CLUSTER), "stop", str(state)], capture_output=True)
        pytest.skip(f"could not start a SLURM cluster: {proc.stderr.strip()[-500:]}")
    print(f"SLURM cluster start: {time.monotonic() - t0:.1f} s")
    try:
        yield state
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], check=True)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_tiny_workflow_through_slurm_equals_local_run(slurm_cluster, tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster / "slurm.conf"))
    monkeypatch.setenv("PATH", f"{slurm_cluster / 'bin'}{os.pathsep}{os.environ['PATH']}")
    t0 = time.monotonic()
    proc = snakemake(
        tmp_path,
        "--profile", str(ROOT / "profiles" / "slurm"),
        # Poll after 1 s (then +10 s per empty poll, the plugin's back-off) rather than 40 s.
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
        *TARGETS,
    )
    print(f"SLURM run (data + base, tiny config): {time.monotonic() - t0:.1f} s")
    out = proc.stdout + proc.stderr
    assert "SLURM run ID" in out, out[-3000:]
    # Every job went through sbatch: one SLURM log per job, and the cluster knows the jobs.
    slurm_logs = list((tmp_path / "logs" / "slurm").rglob("*.log"))
    n_jobs = len(list((tmp_path / "logs" / "benchmarks").rglob("*.tsv")))
    assert n_jobs == len(TASKS) + 2 and len(slurm_logs) == n_jobs, (n_jobs, slurm_logs)  # task_data, corpus, base
    seen = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%T"], capture_output=True, text=True, check=True)
    assert seen.stdout.split().count("COMPLETED") >= n_jobs, seen.stdout

    # The session's local run may have been extended by other tests: compare what SLURM built.
    local, remote = _tree(tiny_run / "results"), _tree(tmp_path / "results")
    assert remote and not set(remote) - set(local), sorted(set(remote) - set(local))
    differ = [p for p in remote if local[p] != remote[p]]
    assert not differ, f"SLURM outputs differ from the local run's: {differ}"
