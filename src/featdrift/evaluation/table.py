"""The accuracy table over every model (base and each checkpoint) and its plots over training steps."""

from __future__ import annotations

import json

import pandas as pd

from ..io import write_parquet, write_text
from ..models import parse_model
from ..plots import plt, save_figure

ROLE_TITLE = {"in_domain": "in-domain", "ood": "out-of-domain (mean)", "heldout": "held-out (mean)"}


def accuracy_table(summaries: dict[str, str]) -> pd.DataFrame:
    """Long table (model, run, step, task, role, accuracy, chance) from each model's summary.json."""
    rows = []
    for model, path in summaries.items():
        run, step = parse_model(model)
        for task, s in json.loads(open(path).read()).items():
            rows.append({"model": model, "run": run, "step": step, "task": task, "role": s["role"],
                         "accuracy": float(s["accuracy"]), "chance": float(s["chance"])})
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame) -> pd.DataFrame:
    """model x task, tasks ordered by role, models by run then step."""
    order = {"in_domain": 0, "ood": 1, "heldout": 2}
    tasks = (table.drop_duplicates("task").assign(o=lambda d: d["role"].map(order))
             .sort_values(["o"], kind="stable")["task"].tolist())
    models = (table.drop_duplicates("model").assign(o=lambda d: d["run"].map({"base": 0, "sft": 1, "rl": 2}))
              .sort_values(["o", "step"], kind="stable")["model"].tolist())
    return table.pivot(index="model", columns="task", values="accuracy").loc[models, tasks]


def markdown(table: pd.DataFrame) -> str:
    w = wide(table)
    roles = table.drop_duplicates("task").set_index("task")["role"]
    head = "| model | " + " | ".join(f"{t} ({roles[t].replace('_', '-')})" for t in w.columns) + " |"
    lines = [head, "|" + "---|" * (len(w.columns) + 1)]
    lines += [f"| {m} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for m, row in w.iterrows()]
    return "\n".join(lines) + "\n"


def role_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy per (run, step, role); base (step 0) is the start of both runs' curves."""
    g = table.groupby(["run", "step", "role"], as_index=False)["accuracy"].mean()
    base = g[g["run"] == "base"]
    return pd.concat([g[g["run"] != "base"]] + [base.assign(run=r) for r in ("sft", "rl")], ignore_index=True)


def plot_roles(table: pd.DataFrame, path) -> None:
    means = role_means(table)
    roles = [r for r in ROLE_TITLE if r in set(means["role"])]
    fig, axes = plt.subplots(1, len(roles), figsize=(4.5 * len(roles), 3.6), squeeze=False, sharey=True)
    for ax, role in zip(axes[0], roles):
        for run, colour in (("sft", "tab:orange"), ("rl", "tab:green")):
            g = means[(means["run"] == run) & (means["role"] == role)].sort_values("step")
            ax.plot(g["step"], g["accuracy"], marker="o", color=colour, label=run.upper())
        ax.set_title(ROLE_TITLE[role])
        ax.set_xlabel("training step (0 = base)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_ylabel("accuracy")
    fig.suptitle("Accuracy over training: SFT against RL", y=1.03)
    save_figure(fig, path)


def plot_tasks(table: pd.DataFrame, path) -> None:
    tasks = wide(table).columns.tolist()
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharex=True)
    base = table[table["run"] == "base"].set_index("task")
    for ax, task in zip(axes.flat, tasks):
        t = table[table["task"] == task]
        for run, colour in (("sft", "tab:orange"), ("rl", "tab:green")):
            g = t[t["run"] == run].sort_values("step")
            ax.plot([0] + g["step"].tolist(), [base.loc[task, "accuracy"]] + g["accuracy"].tolist(), marker=".",
                    color=colour, label=run.upper())
        ax.axhline(base.loc[task, "chance"], color="grey", ls=":", label="chance")
        ax.set_title(f"{task} ({t['role'].iloc[0]})", fontsize="medium")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="small")
    fig.supxlabel("training step (0 = base)")
    fig.supylabel("accuracy")
    fig.suptitle("Accuracy per task over training")
    save_figure(fig, path)


def write_accuracy_table(summaries: dict[str, str], out) -> pd.DataFrame:
    table = accuracy_table(summaries)
    write_parquet(out["table"], table)
    write_text(out["markdown"], markdown(table))
    plot_roles(table, out["roles_plot"])
    plot_tasks(table, out["tasks_plot"])
    return table
