"""Run lm-eval on a loaded model and turn its output into fixed-name tables.

The CLI names files by timestamp; calling `simple_evaluate` directly lets every
artifact have a fixed path and lets interventions wrap the same model object.
"""

from __future__ import annotations

import contextlib
import functools
import logging

import numpy as np
import pandas as pd

PRIMARY_METRIC = {"generate_until": "exact_match", "multiple_choice": "acc"}


def make_hflm(model, tokenizer, batch_size: int = 32, device: str = "cpu", max_length: int | None = None):
    """lm-eval's HFLM around an already loaded model (loaded safetensors-only by `load_model`)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, max_length=max_length)


@functools.lru_cache(maxsize=4)
def task_manager(include_path: str | None):
    """One task index per process. Our synthetic tasks need only their own folder: indexing lm-eval's
    ~14k built-in task files costs ~24 s per call, more than the evaluation of a tiny model itself."""
    from lm_eval.tasks import TaskManager

    if include_path:
        return TaskManager(include_path=str(include_path), include_defaults=False)
    return TaskManager()


def run_lm_eval(lm, tasks: list[str], include_path: str | None, limit: int | None = None, seed: int = 1234,
                gen_kwargs: dict | None = None):
    """Evaluate an lm-eval model instance (plain or steered). Returns (results: {task: {metric: value}}, samples).

    `gen_kwargs` overrides every generation task's settings (EvalSettings.gen_kwargs)."""
    from lm_eval import evaluator

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    # lm-eval would probe the environment (torch's collect_env, ~2 s of subprocesses) and git in the
    # working directory on every call; the lineage record already holds versions and the commit.
    with _patched(evaluator, add_env_info=lambda results: None, get_git_commit_hash=lambda: None):
        out = evaluator.simple_evaluate(model=lm, tasks=tasks, task_manager=task_manager(include_path), limit=limit,
                                        log_samples=True, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                                        fewshot_random_seed=seed, bootstrap_iters=0, gen_kwargs=gen_kwargs)
    results = {t: _clean(out["results"][t]) for t in tasks}
    samples = pd.concat([_samples(t, out["samples"][t], out["configs"][t]["output_type"]) for t in tasks], ignore_index=True)
    return results, samples


@contextlib.contextmanager
def _patched(module, **attrs):
    saved = {k: getattr(module, k) for k in attrs}
    for k, v in attrs.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(module, k, v)


def _clean(metrics: dict) -> dict:
    """`acc,none` -> `acc`; drop stderr placeholders and aliases."""
    out = {}
    for k, v in metrics.items():
        if k == "alias" or "stderr" in k:
            continue
        name = k.split(",")[0]  # one filter per task: "exact_match,final_answer" -> "exact_match"
        out[name] = v
    return out


def _samples(task: str, samples: list[dict], output_type: str) -> pd.DataFrame:
    rows = []
    for s in samples:
        if output_type == "generate_until":
            correct = bool(s.get("exact_match", 0))
            pred = s["filtered_resps"][0] if s["filtered_resps"] else ""
            raw = s["resps"][0][0] if s["resps"] and s["resps"][0] else ""
            chosen = None
        else:
            lls = np.array([r[0] for r in s["filtered_resps"]])
            chosen = int(lls.argmax())
            correct = bool(s["acc"])
            pred, raw = None, None
        n_choices = len(s["filtered_resps"]) if output_type != "generate_until" else None
        # The context lm-eval fed the model: the selection stage reads features on it, at both scales.
        prompt = s["arguments"][0][0] if s.get("arguments") else None
        rows.append({"task": task, "doc_id": int(s["doc_id"]), "correct": correct, "prediction": pred,
                     "generation": raw, "chosen": chosen, "n_choices": n_choices, "target": str(s["target"]),
                     "prompt": prompt})
    return pd.DataFrame(rows).sort_values("doc_id", kind="stable")


def accuracy(results: dict) -> dict[str, float]:
    """One headline number per task: exact match for generation, acc for multiple choice."""
    return {t: float(m.get("exact_match", m.get("acc"))) for t, m in results.items()}
