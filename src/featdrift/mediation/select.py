"""Selection of the features that carry RL's out-of-domain gains (docs/design.md).

Score_k^j = mean over C_j of fbar_k^RL(x) - fbar_k^base(x); Selected_j = {k : Score_k^j >= rho max_k Score_k^j};
the compact set holds the features selected in at least q of the tasks that have critical samples
(q = all of them unless `select.min_tasks` says otherwise).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from ..dictionaries import Dictionary
from ..plots import plt, save_figure
from .readout import pooled_readout


def task_scores(fbar_rl: torch.Tensor, fbar_base: torch.Tensor, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """(Score^j per feature, selected mask). No feature is selected when no score is positive."""
    score = (fbar_rl - fbar_base).mean(0).double().numpy()
    top = score.max() if len(score) else 0.0
    selected = score >= rho * top if top > 0 else np.zeros(len(score), bool)
    return score, selected


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else float("nan")


def select(critical: pd.DataFrame, tasks: list[str], models: dict, D: Dictionary, dict_models: dict[str, str],
           layer: int, rho: float, min_tasks: int | None, batch_size: int) -> dict:
    """`models`/`dict_models`: {"base": ..., "rl": ...} loaded (model, tok) and their names in the dictionary.

    Returns the scores table, per-task sets, overlaps, the compact set and the features active on the
    critical prompts in each model (the pool the random controls draw from)."""
    rows, sets, info = [], {}, {}
    active = {r: torch.zeros(D.n, dtype=torch.bool) for r in ("base", "rl")}
    for task in tasks:
        prompts = critical.loc[critical["task"] == task, "prompt"].tolist()
        info[task] = {"n_critical": len(prompts)}
        if not prompts:
            continue
        fbar = {r: pooled_readout(*models[r], prompts, D, dict_models[r], layer, batch_size) for r in ("base", "rl")}
        for r in active:
            active[r] |= (fbar[r] > 0).any(0)
        score, sel = task_scores(fbar["rl"], fbar["base"], rho)
        rows.append(pd.DataFrame({"task": task, "feature": np.arange(D.n), "score": score, "selected": sel,
                                  "fbar_rl": fbar["rl"].mean(0).numpy(), "fbar_base": fbar["base"].mean(0).numpy()}))
        sets[task] = set(np.flatnonzero(sel).tolist())
        info[task].update(n_selected=len(sets[task]), max_score=float(score.max()))
    scores = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["task", "feature", "score", "selected", "fbar_rl", "fbar_base"])
    used = [t for t in tasks if t in sets]
    q = len(used) if min_tasks is None else min_tasks
    counts = scores.groupby("feature")["selected"].sum() if rows else pd.Series(dtype=int)
    mean_score = scores.groupby("feature")["score"].mean() if rows else pd.Series(dtype=float)
    compact = sorted(counts[counts >= q].index.tolist(), key=lambda k: (-mean_score[k], k)) if used and q > 0 else []
    features = pd.DataFrame({"feature": compact, "n_tasks": [int(counts[k]) for k in compact],
                             "mean_score": [float(mean_score[k]) for k in compact]})
    overlap = pd.DataFrame([{"task_a": a, "task_b": b, "n_a": len(sets[a]), "n_b": len(sets[b]),
                             "jaccard": jaccard(sets[a], sets[b])} for a, b in itertools.combinations(used, 2)],
                           columns=["task_a", "task_b", "n_a", "n_b", "jaccard"])
    return {"scores": scores, "features": features, "overlap": overlap, "sets": sets, "tasks": info,
            "tasks_used": used, "min_tasks": q, "compact": [int(k) for k in compact],
            "active": {r: torch.nonzero(a).flatten().tolist() for r, a in active.items()}}


def plot_selection(result: dict, path) -> None:
    """Left: critical samples and selected features per task. Right: pairwise Jaccard of the per-task sets."""
    tasks = list(result["tasks"])
    used = result["tasks_used"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(tasks))
    axes[0].bar(x - 0.27, [result["tasks"][t]["n_critical"] for t in tasks], 0.27,
                label="critical samples (base wrong, RL right)")
    axes[0].bar(x, [result["tasks"][t].get("n_reverse", 0) for t in tasks], 0.27, color="tab:grey",
                label="reverse flips (base right, RL wrong)")
    axes[0].bar(x + 0.27, [result["tasks"][t].get("n_selected", 0) for t in tasks], 0.27, label="selected features")
    axes[0].set_xticks(x, tasks, rotation=30)
    axes[0].set_ylabel("count")
    axes[0].set_title(f"Per task (compact set: {len(result['compact'])} features in >= {result['min_tasks']} tasks)",
                      fontsize="medium")
    axes[0].legend()
    m = np.full((len(used), len(used)), np.nan)
    for i, a in enumerate(used):
        for j, b in enumerate(used):
            m[i, j] = jaccard(result["sets"][a], result["sets"][b])
    im = axes[1].imshow(m, vmin=0, vmax=1, cmap="viridis")
    axes[1].set_xticks(range(len(used)), used, rotation=30)
    axes[1].set_yticks(range(len(used)), used)
    for i in range(len(used)):
        for j in range(len(used)):
            if not np.isnan(m[i, j]):
                axes[1].text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", color="w", fontsize="small")
    axes[1].set_title("Jaccard overlap of the per-task sets", fontsize="medium")
    fig.colorbar(im, ax=axes[1], label="Jaccard")
    fig.suptitle("Generalization features: selection")
    save_figure(fig, path)
