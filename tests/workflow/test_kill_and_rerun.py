"""Issue 8: SIGKILLed runs resume to the same bytes, two runs from scratch agree, a failed run harms nothing.

One run from scratch of the tiny config (data, base, lm-eval of base, probe, activations of base, the
base SAE) is killed three times on the way, with SIGKILL, at a moment found by polling its files:
  - lm-eval of the base model, while it scores requests: only the job is killed (the OOM killer's choice);
  - activation capture, while a shard is being written: snakemake and every job are killed (a crashed node);
  - SAE training, while it logs steps: only the job is killed.
After each kill a rerun of snakemake must finish (after a crash, once `--unlock` has removed the
stale lock: Snakemake refuses to guess whether another instance still runs). Its results are then compared byte for byte
with the session's uninterrupted run of the same config (conftest.tiny_run), which is the second
run from scratch of the determinism check. Training's kill-and-resume is test_train_resume.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from helpers import FULL_CONFIG, ROOT, TEST_CONFIG, snakemake
from featdrift.activations.store import shard_meta

pytestmark = pytest.mark.slow

EVAL = "results/eval/base/summary.json"
SHARD = "results/acts/base/layer-1/part-0.parquet"  # the test config captures one shard per model
SAE = "results/dicts/sae-base/layer-1/metrics.json"
TARGETS = [EVAL, SAE]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def kill_when(wd: Path, targets: list[str], ready, what: str, job_only: str | None = None, timeout: float = 600) -> str:
    """Run snakemake on `targets`; SIGKILL it when `ready()` turns true (polled every 10 ms).

    job_only=None kills snakemake and every job (its session); job_only="x.py" kills only the
    job process whose command line holds that script name. Returns snakemake's output."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", str(TEST_CONFIG),
           "--cores", "2", *targets]
    log = wd / f"kill-{what}.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=wd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        t0, fired = time.monotonic(), False
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            if ready():
                if job_only is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    fired = True
                else:
                    jobs = [p for p in psutil.Process(proc.pid).children(recursive=True)
                            if any(job_only in a for a in p.cmdline())]
                    for p in jobs:
                        p.send_signal(signal.SIGKILL)
                    fired = bool(jobs)
                if fired:
                    break
            time.sleep(0.01)
        if not fired and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    text = log.read_text()
    assert fired, f"the run ended before {what} could be killed:\n{text[-3000:]}"
    return text


def unlock_after_crash(wd: Path, *targets: str) -> None:
    """After snakemake itself was SIGKILLed its lock stays: a plain rerun stops and names --unlock."""
    proc = snakemake(wd, *targets, check=False)
    assert proc.returncode != 0 and "LockException" in proc.stdout + proc.stderr
    assert "It can be removed with the --unlock argument." in proc.stdout + proc.stderr
    snakemake(wd, "--unlock", *targets)


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file under root/results (Snakemake's directory timestamps left out)."""
    out = {}
    for p in sorted((root / "results").rglob("*")):
        if p.is_file() and p.name != ".snakemake_timestamp":
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(files) -> list[str]:
    """Temporaries of atomic writes that a SIGKILL interrupted (hidden `.<name>.<random>.tmp`)."""
    return sorted(f for f in files if any(part.startswith(".") and part.endswith(".tmp") for part in f.split("/")))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """The tiny config's TARGETS from an empty folder, SIGKILLed three times on the way."""
    wd = tmp_path_factory.mktemp("scratch")
    events = {}

    eval_log = wd / "logs/eval/base.log"
    events["eval"] = kill_when(wd, [EVAL], lambda: "Running " in _read(eval_log), "eval", job_only=".eval.py")
    events["eval_after"] = tree(wd)
    done = snakemake(wd, EVAL)
    events["eval_rerun"] = done.stdout + done.stderr

    layer = wd / "results/acts/base/layer-1"
    # Retried (shard deleted) in the rare case the shard was written between two polls.
    for attempt in range(3):
        try:
            events["acts"] = kill_when(wd, [SHARD], lambda: layer.is_dir() and any(
                e.name.startswith(".part-") for e in os.scandir(layer)), "acts",
                timeout=600)
            break
        except AssertionError:
            if attempt == 2:
                raise
            (wd / SHARD).unlink(missing_ok=True)
    events["acts_after"] = tree(wd)
    unlock_after_crash(wd, SAE)

    # The rerun captures the shard again, then trains the SAE: killed while it logs steps.
    dict_log = wd / "logs/dicts/sae-base/layer-1.log"
    events["dict"] = kill_when(wd, [SAE], lambda: " step " in _read(dict_log), "dict", job_only=".dictionary.py")
    events["acts_rerun"] = (wd / SHARD).exists()
    events["dict_after"] = tree(wd)
    snakemake(wd, *TARGETS)
    return wd, events


@pytest.fixture(scope="module")
def reference(tiny_run):
    """The session's uninterrupted run, which holds TARGETS (conftest.tiny_run builds them once for both
    workers); the run checks they are up to date, with the full build's overrides, so that nothing is
    rerun for a params change."""
    snakemake(tiny_run, *TARGETS, config=FULL_CONFIG)
    return tiny_run


def test_killed_eval_leaves_no_result_and_the_rerun_finishes(scratch):
    wd, ev = scratch
    after = ev["eval_after"]
    assert not any(f.startswith("results/eval/") and not f.endswith(".tmp") and "/." not in f for f in after), \
        [f for f in after if f.startswith("results/eval/")]  # nothing of the killed job looks complete
    assert "results/models/base/model.safetensors" in after  # what finished before the kill stays
    assert "Error in rule eval" in ev["eval"]
    assert "rule eval:" in ev["eval_rerun"] and (wd / EVAL).exists()


def test_crash_during_capture_leaves_only_a_temporary_and_the_rerun_finishes(scratch):
    """Snakemake could not clean up: only the atomic writers keep a half-written shard from looking complete."""
    wd, ev = scratch
    after = ev["acts_after"]
    acts = [f for f in after if f.startswith("results/acts/")]
    assert leftovers(acts), acts  # the write the crash interrupted: `.part-i.parquet.<random>.tmp`
    for f in set(acts) - set(leftovers(acts)):  # a shard under its final name was finished before the crash
        assert f.endswith(".parquet") and shard_meta(wd / f)["n_rows"] == str(pq.ParquetFile(wd / f).metadata.num_rows)
    assert ev["acts_rerun"]  # after `--unlock`, the rerun captured the shards again


def test_killed_dictionary_job_is_cleaned_by_snakemake_and_rerun(scratch):
    wd, ev = scratch
    assert "Error in rule sae" in ev["dict"], ev["dict"][-2000:]
    assert not [f for f in ev["dict_after"] if f.startswith("results/dicts/")]
    assert (wd / SAE).exists()


def test_two_runs_from_scratch_give_identical_bytes(scratch, reference):
    """Every file of the killed-and-resumed run equals the uninterrupted run's (temporaries of killed writes aside)."""
    wd, _ = scratch
    ours, theirs = tree(wd), tree(reference)
    stale = leftovers(ours)
    assert all(f.startswith("results/acts/") for f in stale), stale
    files = sorted(set(ours) - set(stale))
    assert len(files) > 40 and not set(files) - set(theirs), sorted(set(files) - set(theirs))
    differ = [f for f in files if ours[f] != theirs[f]]
    # A lineage record names the git commit it ran at: if a commit landed between the two runs, compare the rest.
    for f in list(differ):
        if f.endswith("lineage.json"):
            a, b = (json.loads((r / f).read_text()) for r in (wd, reference))
            if a.pop("code") != b.pop("code") and a == b:
                differ.remove(f)
    assert differ == []


def test_a_failed_run_changes_nothing_else(scratch):
    """A corrupted shard fails the SAE job with one line naming the file; the failed job's own outputs
    (stale: their input changed) are removed by Snakemake, which deletes a job's old outputs before it
    runs it; every other file keeps its bytes, the SAE's metrics (rule dictionary_metrics, which never
    runs after the failure) included."""
    wd, _ = scratch
    bad = wd / SHARD
    before = tree(wd)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    proc = snakemake(wd, SAE, check=False)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("featdrift:")]
    assert len(ours) == 1 and ours[0].startswith(f"featdrift: sae: {SHARD}: truncated or corrupt activation shard (")
    assert ours[0].endswith("; delete it and rerun the activations rule"), ours
    after = tree(wd)
    sae_outputs = {f for f in before if f.startswith("results/dicts/sae-base/") and "/metrics." not in f}
    assert sae_outputs and not sae_outputs & set(after)
    changed = [f for f in before if f not in sae_outputs and f != SHARD and before[f] != after.get(f)]
    assert changed == [] and set(after) <= set(before)


def test_a_config_error_changes_nothing(scratch):
    wd, _ = scratch
    before = tree(wd)
    proc = snakemake(wd, *TARGETS, config={"data": {"n_test": "ten"}}, check=False)
    assert proc.returncode != 0
    assert [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("featdrift:")] == \
        ["featdrift: config error: data.n_test: 'ten' is not of type 'integer'"]
    assert tree(wd) == before
