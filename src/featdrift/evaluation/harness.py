"""Run lm-eval on a loaded model and turn its output into fixed-name tables.

The CLI names files by timestamp; calling `simple_evaluate` directly lets every
artifact have a fixed path and lets interventions wrap the same model object.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

PRIMARY_METRIC = {"generate_until": "exact_match", "multiple_choice": "acc"}


def run_lm_eval(model, tokenizer, tasks: list[str], include_path: str | None, batch_size: int = 32,
                limit: int | None = None, device: str = "cpu", seed: int = 1234, max_length: int | None = None):
    """Returns (results: {task: {metric: value}}, samples DataFrame)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, max_length=max_length)
    tm = TaskManager(include_path=include_path) if include_path else TaskManager()
    out = simple_evaluate(model=lm, tasks=tasks, task_manager=tm, limit=limit, log_samples=True,
                          random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                          bootstrap_iters=0)
    results = {t: _clean(out["results"][t]) for t in tasks}
    samples = pd.concat([_samples(t, out["samples"][t], out["configs"][t]["output_type"]) for t in tasks], ignore_index=True)
    return results, samples


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
        rows.append({"task": task, "doc_id": int(s["doc_id"]), "correct": correct, "prediction": pred,
                     "generation": raw, "chosen": chosen, "n_choices": n_choices, "target": str(s["target"])})
    return pd.DataFrame(rows).sort_values("doc_id", kind="stable")


def accuracy(results: dict) -> dict[str, float]:
    """One headline number per task: exact match for generation, acc for multiple choice."""
    return {t: float(m.get("exact_match", m.get("acc"))) for t, m in results.items()}
