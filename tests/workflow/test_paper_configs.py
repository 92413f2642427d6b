"""The paper-scale configs build their whole DAG (dry run, no download)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT


@pytest.mark.parametrize("name", ["qwen3-4b", "qwen2.5-7b"])
def test_paper_config_dry_run(name, tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile",
           str(ROOT / "configs" / f"{name}.yaml"), "-n", "--quiet", "rules"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    cfg = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    n_ckpt = cfg["train"]["checkpoints_per_epoch"] * cfg["train"]["epochs"]
    for rule, count in [("sft", 1), ("rl", 1), ("base", 1), ("eval", 1 + 2 * n_ckpt)]:
        assert any(line.split()[:2] == [rule, str(count)] for line in out.splitlines()), out[-3000:]
    assert not (tmp_path / f"results-{name}").exists()
