"""Shared test set-up: offline Hugging Face, a project-local HF_HOME, and a runner for the workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "configs" / "test.yaml"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(ROOT / ".hf_home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` on the test config (+ `config` overrides written to a file)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", str(TEST_CONFIG)]
    if config:
        extra = workdir / "override.yaml"
        extra.write_text(yaml.safe_dump(config))
        cmd.append(str(extra))
    cmd += ["--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config's data, base model and base evaluation, built once for the session."""
    wd = tmp_path_factory.mktemp("tiny")
    snakemake(wd, "results/models/base.lineage.json", "results/eval/base/summary.json")
    return wd
