"""Training: a SIGKILLed job rerun by Snakemake resumes and ends with the uninterrupted run's bytes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

from helpers import snakemake
from featdrift.training.checkpoints import KILL_ENV, MARKER

# Small GRPO groups and short completions keep the tiny runs to seconds; 4 steps, a checkpoint at each.
OVERRIDE = {"train": {"batch_size": 16, "checkpoints_per_epoch": 4,
                      "rl": {"num_generations": 4, "max_completion_length": 24}}}
RUNS = ["sft", "rl"]


def checkpoint_bytes(wd: Path) -> dict[str, str]:
    out = {}
    for run in RUNS:
        for d in sorted((wd / "results/models" / run).glob("step-*")):
            for f in sorted(d.iterdir()):
                if not f.name.startswith(".snakemake"):
                    out[f"{run}/{d.name}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def seed_inputs(src: Path, wd: Path) -> None:
    """Training's inputs (task data and the base model) from the session's run, times kept: no train.*
    key reaches their rules, and without Snakemake metadata here only their times count, so neither reruns."""
    for rel in ("results/data", "results/models/base"):
        shutil.copytree(src / rel, wd / rel)
    shutil.copy2(src / "results/models/base.lineage.json", wd / "results/models/base.lineage.json")


def test_killed_training_resumes_to_identical_checkpoints(tiny_run, tmp_path, monkeypatch):
    wd, resume = tmp_path, tmp_path / "results/.resume"
    seed_inputs(tiny_run, wd)
    # SIGKILL while checkpoint 2 (sft) and 3 (rl) are being sealed: written by the trainer, not marked complete.
    monkeypatch.setenv(KILL_ENV, "sft:2,rl:3")
    proc = snakemake(wd, "-k", *RUNS, config=OVERRIDE, check=False)
    assert proc.returncode != 0
    assert (resume / "sft/checkpoint-1" / MARKER).exists() and not (resume / "sft/checkpoint-2" / MARKER).exists()
    assert (resume / "rl/checkpoint-2" / MARKER).exists() and not (resume / "rl/checkpoint-3" / MARKER).exists()
    assert not any(any((wd / "results/models" / run).glob("step-*")) for run in RUNS)  # Snakemake removed them

    monkeypatch.delenv(KILL_ENV)
    snakemake(wd, *RUNS, config=OVERRIDE)
    assert "resuming from results/.resume/sft/checkpoint-1\n" in (wd / "logs/train/sft.log").read_text()
    assert "resuming from results/.resume/rl/checkpoint-2\n" in (wd / "logs/train/rl.log").read_text()
    assert not resume.exists()
    resumed = checkpoint_bytes(wd)
    curves = {run: pd.read_parquet(wd / f"results/train/{run}/curves.parquet") for run in RUNS}
    assert sorted({k.split("/")[1] for k in resumed}) == ["step-1", "step-2", "step-3", "step-4"]
    assert {"model.safetensors", "tokenizer.json", "trainer_state.json", "config.json"} <= {k.split("/")[2] for k in resumed}

    snakemake(wd, *RUNS, "--forcerun", *RUNS, config=OVERRIDE)  # uninterrupted, from scratch
    assert "starting from the base model" in (wd / "logs/train/rl.log").read_text()
    fresh = checkpoint_bytes(wd)
    assert [k for k in fresh if fresh[k] != resumed.get(k)] == []
    for run in RUNS:
        df = pd.read_parquet(wd / f"results/train/{run}/curves.parquet")
        pd.testing.assert_frame_equal(df, curves[run])
        assert df["step"].tolist() == [1, 2, 3, 4] and df["loss"].notna().all()
    assert {"reward_mean", "reward_std", "frac_zero_std_groups", "completion_length"} <= set(curves["rl"].columns)
