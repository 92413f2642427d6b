"""One training run (sft or rl) end to end: data order, resume, train, publish, curves."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..io import read_parquet
from ..lineage import content_hash, package_versions
from ..determinism import set_determinism
from ..models.load import load_model
from ..settings import TrainSettings
from .checkpoints import CheckpointCallback, ResumeStore
from .curves import curves, write_curves
from .schedule import prompt_order, total_steps


def _code_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def fingerprint(run: str, model_dir, train_parquet, train: TrainSettings, steps: list[int], seed: int,
                threads: int) -> dict:
    """What the run depends on, as plain JSON values: ResumeStore compares it with the stored
    fingerprint.json, so settings go in as TrainSettings.as_dict (lists, not tuples)."""
    versions = package_versions()
    return {"run": run, "train": train.as_dict(), "steps": steps, "seed": seed, "threads": threads,
            "base": content_hash(model_dir), "data": content_hash(train_parquet), "code": _code_hash(),
            "packages": {k: versions.get(k) for k in ("python", "torch", "transformers", "trl", "accelerate")}}


def train_run(run: str, model_dir, train_parquet, train: TrainSettings | dict, steps: list[int], seed: int,
              threads: int, resume_dir, out, answer_regex: str | None = None, trust_remote_code: bool = False) -> dict:
    """Train `run` from the base model; write out["models"] (one dir per step), out["curves"], out["plot"].

    `train`: the train section with at least this run's part (a dict is checked key by key first)."""
    train = TrainSettings.of(train, run)
    if run == "rl":  # vLLM asked for where it cannot run: stop before any model is loaded
        from .grpo import vllm_args
        vllm_args(train.rl)
    # Not transformers' full_determinism, which also NaN-fills fresh memory (slow on CPU).
    set_determinism(threads, deterministic=train.deterministic)
    rows = read_parquet(train_parquet)
    b, epochs = train.batch_size, train.epochs
    total = total_steps(len(rows), b, epochs)
    if steps[-1] != total:
        raise ValueError(f"train: {train_parquet} has {len(rows)} rows, so {total} steps, but the checkpoint grid "
                         f"(from data.n_train) ends at step {steps[-1]}")
    stream = rows.iloc[prompt_order(len(rows), b, epochs, seed)].reset_index(drop=True)
    store = ResumeStore(resume_dir, run, fingerprint(run, model_dir, train_parquet, train, steps, seed, threads))
    if "WORLD_SIZE" in os.environ:  # a data-parallel worker: the launching job prepared the state
        resume = store.latest()
    elif train.num_processes > 1:
        store.prepare()
        from .launch import launch
        out = {"models": [str(p) for p in out["models"]], "curves": str(out["curves"]), "plot": str(out["plot"])}
        return launch(train.num_processes, dict(run=run, model_dir=str(model_dir), train_parquet=str(train_parquet),
                                                train=train.as_dict(), steps=list(steps), seed=seed, threads=threads,
                                                resume_dir=str(resume_dir), out=out, answer_regex=answer_regex,
                                                trust_remote_code=trust_remote_code))
    else:
        resume = store.prepare()
    print(f"{run}: {total} steps of {b} prompts, checkpoints at {steps}; "
          + (f"resuming from {resume}" if resume else "starting from the base model"), flush=True)
    model, tok = load_model(model_dir, trust_remote_code=trust_remote_code)
    callbacks = [CheckpointCallback(store, steps)]
    if run == "sft":
        from .sft import sft_trainer
        trainer = sft_trainer(model, tok, stream, train, seed, str(store.root), total, callbacks)
    else:
        from .grpo import grpo_trainer
        trainer = grpo_trainer(model, tok, stream, train, seed, str(store.root), total, callbacks, answer_regex)
    if len(trainer.train_dataset) != len(stream):
        raise ValueError(f"{run}: the trainer dropped {len(stream) - len(trainer.train_dataset)} rows (too long for "
                         "train.sft.max_length?); both runs must see the same prompts")
    trainer.train(resume_from_checkpoint=resume)
    if trainer.state.global_step != total:
        raise RuntimeError(f"{run}: stopped at step {trainer.state.global_step} of {total}")
    if not trainer.is_world_process_zero():
        return {}
    store.publish(steps, list(out["models"]))
    df = curves(trainer.state.log_history, run)
    write_curves(df, run, out["curves"], out["plot"])
    last = df.tail(max(1, len(df) // 10))
    summary = {"steps": steps, "total_steps": total, "resumed_from": resume and Path(resume).name,
               "final_loss": float(last["loss"].mean())}
    if run == "rl":
        summary["final_reward"] = float(last["reward_mean"].mean())
    return summary


def discard_resume_state(resume_dir) -> None:
    """After the job's outputs and lineage are written: the resume state is no longer needed."""
    ResumeStore(resume_dir, "", {}).remove()
