"""Checkpoint series and resume.

Where things live:
- `<resume>/` (e.g. `results/.resume/sft/`, passed as a param, NOT a declared output):
  the trainer's full checkpoints `checkpoint-N/` (weights, optimizer, scheduler, RNG
  states, trainer state), the published form of every checkpoint saved so far
  `steps/step-N/`, and `fingerprint.json`. Snakemake deletes the declared outputs of
  a failed job before it reruns it, but it never touches this folder, so a rerun
  finds the state the killed job left.
- `models/{run}/step-N/` (declared `directory()` outputs): weights (safetensors),
  tokenizer, config and a trainer_state.json without wall-clock entries. Linked
  (hard links, copies across file systems) from `steps/step-N/` at the end of the
  job, each through a temporary sibling that is renamed into place.

Completeness: the trainer writes `checkpoint-N/` in place, so a SIGKILL can leave it
half written. After it returns (`on_save`), `steps/step-N/` is built in a temporary
folder and renamed, and only then is the marker `checkpoint-N/COMPLETE` written.
A checkpoint without the marker does not exist for resume: it is deleted and the run
resumes from the last marked one (older full checkpoints are deleted once a newer one
is marked, so at most one optimizer state is kept). The trainer restores weights,
optimizer, scheduler, RNG states and the data position, so the resumed run
continues bit for bit (CPU) like the uninterrupted one.

Staleness: `fingerprint.json` holds the hashes of everything the run depends on
(config of the run, base model, training data, thread count, library versions,
this package's training code). A mismatch wipes the folder: resuming is only ever
done into the very same run. The folder is removed when the job succeeds.

Test hook: FEATDRIFT_TEST_KILL_AT="<run>:<step>[,...]" makes the job SIGKILL itself while
sealing that checkpoint (after the trainer wrote it, before it is marked complete).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

from transformers import TrainerCallback

from ..io import atomic_dir, write_json, write_text

MARKER = "COMPLETE"
# Trainer-only files (pickles, optimizer state, model cards) kept out of published checkpoints.
PRIVATE = {"optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "README.md", "trainer_state.json", MARKER,
           "entropy_ctrl_state.json"}
PRIVATE_RE = re.compile(r"^rng_state.*\.pth$")
# Wall-clock entries, and trl SFT's running token count (kept on the trainer, not restored on resume).
DROPPED_KEYS = ("runtime", "per_second", "time", "num_tokens")
KILL_ENV = "FEATDRIFT_TEST_KILL_AT"


def _step_of(p: Path) -> int:
    return int(p.name.rsplit("-", 1)[1])


def sanitized_state(path: Path) -> dict:
    """trainer_state.json without wall-clock entries, so that reruns and resumed runs give identical bytes."""
    state = json.loads(path.read_text())
    state["log_history"] = [{k: v for k, v in e.items() if not any(t in k for t in DROPPED_KEYS)}
                            for e in state.get("log_history", [])]
    return state


class ResumeStore:
    def __init__(self, root: str | Path, run: str, fingerprint: dict):
        self.root, self.run, self.fingerprint = Path(root), run, fingerprint

    def checkpoint(self, step: int) -> Path:
        return self.root / f"checkpoint-{step}"

    def published(self, step: int) -> Path:
        return self.root / "steps" / f"step-{step}"

    def prepare(self) -> str | None:
        """Clear stale or incomplete state; return the checkpoint to resume from (None: start)."""
        fp_file = self.root / "fingerprint.json"
        if self.root.exists() and (not fp_file.exists() or json.loads(fp_file.read_text()) != self.fingerprint):
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(fp_file, self.fingerprint)
        for p in [*self.root.glob(".*.tmp"), *self.root.glob("steps/.*.tmp")]:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        for p in self.root.glob("checkpoint-*"):
            if not self._complete(p):
                shutil.rmtree(p)
        latest = self.latest()
        for p in self.root.glob("checkpoint-*"):
            if str(p) != latest:
                shutil.rmtree(p)
        return latest

    def _complete(self, p: Path) -> bool:
        return (p / MARKER).exists() and self.published(_step_of(p)).is_dir()

    def latest(self) -> str | None:
        """The last complete checkpoint (read only: what data-parallel workers resume from)."""
        complete = sorted((p for p in self.root.glob("checkpoint-*") if self._complete(p)), key=_step_of)
        return str(complete[-1]) if complete else None

    def seal(self, step: int) -> None:
        """After the trainer saved checkpoint-`step`: publish it, then mark it complete."""
        ckpt = self.checkpoint(step)
        with atomic_dir(self.published(step)) as tmp:
            for f in sorted(ckpt.iterdir()):
                if f.is_file() and f.name not in PRIVATE and not PRIVATE_RE.match(f.name):
                    shutil.copy2(f, tmp / f.name)
            write_json(tmp / "trainer_state.json", sanitized_state(ckpt / "trainer_state.json"))
        if f"{self.run}:{step}" in os.environ.get(KILL_ENV, "").split(","):
            os.kill(os.getpid(), signal.SIGKILL)
        write_text(ckpt / MARKER, f"{step}\n")
        for p in self.root.glob("checkpoint-*"):
            if _step_of(p) < step:
                shutil.rmtree(p)

    def publish(self, steps: list[int], out_dirs: list[str]) -> None:
        """Link every published checkpoint into its declared output directory."""
        for step, out in zip(steps, out_dirs):
            src = self.published(step)
            if not src.is_dir():
                raise RuntimeError(f"{self.run}: checkpoint of step {step} was never saved")
            with atomic_dir(out) as tmp:
                for f in sorted(src.iterdir()):
                    try:
                        os.link(f, tmp / f.name)
                    except OSError:
                        shutil.copy2(f, tmp / f.name)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            self.root.parent.rmdir()  # results/.resume, once no run has state left
        except OSError:
            pass


class CheckpointCallback(TrainerCallback):
    """Saves exactly at the configured steps and seals each checkpoint (main process only)."""

    def __init__(self, store: ResumeStore, steps: list[int]):
        self.store, self.steps = store, set(steps)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.store.seal(state.global_step)
        return control
