"""DVC round trip on the tiny config: record, push, fresh clone, pull; then Snakemake has nothing to do.

Runs in a throwaway git repository made from this working tree (never in the checkout itself),
with the remote pointed at a temporary folder the way README "Versioned results" describes
(`dvc remote modify --local local url ...`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT

# Stages of the session's local run (conftest.tiny_run) that the test versions with DVC.
STAGES = ["data", "models", "eval"]
TARGETS = ["results/models/base.lineage.json", "results/eval/base/summary.json"]
GIT = ["git", "-c", "user.name=featdrift-test", "-c", "user.email=test@featdrift.invalid", "-c", "init.defaultBranch=main"]


def run(cmd, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str) -> str:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def snakemake(cwd: Path, *args: str) -> str:
    return run([sys.executable, "-m", "snakemake", "-s", "Snakefile", "--configfile", "configs/test.yaml", "--cores", "1", *args], cwd)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_clone_pull_restores_every_artifact_and_nothing_reruns(tiny_run, tmp_path):
    t0 = time.monotonic()
    repo, clone, remote = tmp_path / "repo", tmp_path / "clone", tmp_path / "remote"
    # A git repository holding this working tree (tracked and untracked, minus ignored files).
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT).split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    assert (repo / "dvc.yaml").is_file() and (repo / ".dvc" / "config").is_file()
    run([*GIT, "init", "-q"], repo)
    run([*GIT, "add", "-A"], repo)
    run([*GIT, "commit", "-q", "-m", "code"], repo)
    for stage in STAGES:  # the run: the session's local results, times kept
        shutil.copytree(tiny_run / "results" / stage, repo / "results" / stage)

    dvc(repo, "remote", "modify", "--local", "local", "url", str(remote))
    dvc(repo, "commit", "--force", *STAGES)
    dvc(repo, "push", *STAGES)
    run([*GIT, "add", "dvc.lock"], repo)
    run([*GIT, "commit", "-q", "-m", "results"], repo)
    assert remote.is_dir() and any(remote.rglob("*"))

    run([*GIT, "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "results").exists()
    dvc(clone, "remote", "modify", "--local", "local", "url", str(remote))
    dvc(clone, "pull", *STAGES)
    # DVC writes files in no particular order; --touch gives them times in DAG order (safe: dvc.lock
    # pins their content). Snakemake's metadata (.snakemake/) is not versioned: with none, the
    # params/code/input triggers stay silent, so the default triggers apply.
    snakemake(clone, "--touch", *TARGETS)
    out = snakemake(clone, "-n", *TARGETS)
    assert "Nothing to be done" in out, out[-3000:]
    print(f"DVC round trip (commit, push, clone, pull, touch, dry run): {time.monotonic() - t0:.1f} s")

    for stage in STAGES:
        local, restored = tree(tiny_run / "results" / stage), tree(clone / "results" / stage)
        assert local and restored == local, stage
    assert "results/eval/base/summary.json" in dvc(clone, "metrics", "show")
    # dvc.lock matches the restored folders and the code (Python byte caches are .dvcignore'd).
    assert "up to date" in dvc(clone, "status", *STAGES)
