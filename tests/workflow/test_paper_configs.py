"""The paper-scale configs build their whole DAG (dry run, no download), with the jobs `featdrift plan` counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from helpers import ROOT
from featdrift.plan import load_config, plan

PAPER = ["qwen3-4b", "qwen2.5-7b", "llama3.1-8b"]
# The plan's stages as rules of the workflow (the data, table and report rules are no stage of it).
STAGE_RULES = {"base import": ["base"], "SFT": ["sft"], "GRPO": ["rl"], "eval": ["eval", "eval_table"],
               "probe capture": ["probe", "activations"],
               "dictionaries": ["sae", "crosscoder", "dictionary_seed", "dictionary_metrics"],
               "selection": ["select"], "interventions": ["intervene", "intervention_effects"]}


@pytest.mark.parametrize("name", PAPER)
def test_paper_config_dry_run(name, tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile",
           str(ROOT / "configs" / f"{name}.yaml"), "-n", "--quiet", "rules"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=os.environ.copy())
    print(f"{name}: dry run {time.perf_counter() - t:.1f} s (target < 10 s)")  # measured, not asserted
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    cfg = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    n_ckpt = cfg["train"]["checkpoints_per_epoch"] * cfg["train"]["epochs"]
    for rule, count in [("sft", 1), ("rl", 1), ("base", 1), ("eval", 1 + 2 * n_ckpt)]:
        assert counts.get(rule) == count, (rule, counts)
    stages = {s["name"]: s["jobs"] for s in plan(load_config([ROOT / "configs" / f"{name}.yaml"]))["stages"]}
    for stage, rules in STAGE_RULES.items():
        assert stages[stage] == sum(counts.get(r, 0) for r in rules), (stage, counts)
    assert stages["drift"] == sum(c for r, c in counts.items() if r.startswith("drift_"))
    assert not (tmp_path / f"results-{name}").exists()
