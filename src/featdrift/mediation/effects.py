"""Accuracy changes of every intervention against the unedited model, with paired bootstrap intervals."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from ..plots import plt, save_figure


def bootstrap_ci(diff: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean of per-item differences, items resampled with replacement."""
    if len(diff) == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(1)
    a = (1 - confidence) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def detectable_change(diff: np.ndarray, confidence: float, power: float = 0.8) -> float:
    """The smallest true mean change that an interval at `confidence` excludes from 0 with probability
    `power`: (z_{(1+confidence)/2} + z_power) x the standard error of the mean of per-item differences.
    Where no item changes the standard error is 0, so the figure reads 0: those n items can show no change."""
    if len(diff) < 2:
        return float("nan")
    z = NormalDist().inv_cdf((1 + confidence) / 2) + NormalDist().inv_cdf(power)
    return float(z * diff.std(ddof=1) / np.sqrt(len(diff)))


def subsets(tasks: dict[str, dict], critical: pd.DataFrame, roles: list[str]) -> list[tuple[str, str, pd.DataFrame]]:
    """(subset, task, items (task, doc_id)): per task full sets and critical subsets, and their pools."""
    out = []
    crit_pool = []
    for role in roles:
        names = [t for t, v in tasks.items() if v["role"] == role]
        if not names:
            continue
        for t in names:
            out.append(("full", t, None))
            c = critical.loc[critical["task"] == t, ["task", "doc_id"]]
            if len(c):
                out.append(("critical", t, c))
                crit_pool.append(c)
        out.append(("full", f"all {role}", names))
    if crit_pool:
        out.append(("critical", "all critical", pd.concat(crit_pool, ignore_index=True)))
    return out


def effects_table(samples: pd.DataFrame, tasks: dict[str, dict], critical: pd.DataFrame, roles: list[str],
                  mode: str, n_boot: int, confidence: float, seed: int) -> pd.DataFrame:
    """One row per (scale, set, subset, task): n, unedited and edited accuracy, difference and its interval.

    `random` rows average the per-item differences over the draws before resampling items."""
    key = ["task", "doc_id"]
    ref = samples[samples["set"] == "none"][key + ["correct"]].rename(columns={"correct": "ref"})
    edited = samples[samples["set"] != "none"].merge(ref, on=key, validate="many_to_one")
    edited["diff"] = edited["correct"].astype(float) - edited["ref"].astype(float)
    rows = []
    rng = np.random.default_rng(seed)
    for subset, task, items in subsets(tasks, critical, roles):
        if items is None:
            part = edited[edited["task"] == task]
        elif isinstance(items, list):
            part = edited[edited["task"].isin(items)]
        else:
            part = edited.merge(items, on=key)
        for (scale, set_), g in part.groupby(["scale", "set"], sort=True):
            groups = [("selected", g)] if set_ == "selected" else [("random", g)] + [
                (f"random-{d}", gd) for d, gd in g.groupby("draw", sort=True)]
            for label, gg in groups:
                per_item = gg.groupby(key, sort=True).agg(diff=("diff", "mean"), ref=("ref", "first"),
                                                          correct=("correct", "mean"))
                diff = per_item["diff"].to_numpy()
                lo, hi = bootstrap_ci(diff, n_boot, confidence, rng)
                rows.append({"mode": mode, "scale": scale, "set": label, "subset": subset, "task": task,
                             "n": len(per_item), "n_features": int(gg["n_features"].iloc[0]),
                             "acc_unedited": float(per_item["ref"].mean()), "acc_edited": float(per_item["correct"].mean()),
                             "diff": float(diff.mean()), "ci_low": lo, "ci_high": hi,
                             "detectable": detectable_change(diff, confidence)})
    return pd.DataFrame(rows)


def headline(effects: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows, selected set beside the mean of the random draws."""
    pooled = effects[effects["task"].str.startswith("all ") & effects["set"].isin(["selected", "random"])]
    order = {"all critical": 0, "all ood": 1, "all heldout": 2, "all in_domain": 3}
    keys = pd.DataFrame({"m": pooled["mode"].map({"disable": 0, "amplify": 1}), "c": pooled["scale"],
                         "t": pooled["task"].map(order), "s": pooled["set"].map({"selected": 0, "random": 1})})
    return pooled.loc[keys.sort_values(["m", "c", "t", "s"], kind="stable").index].reset_index(drop=True)


def _fmt(r) -> str:
    return f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"


def edit_label(mode: str, scale: float, edit: str = "readout") -> str:
    if mode == "disable":
        return "disable in RL (c = 0)"
    if edit == "steer":
        return f"steer base by RL's features (c = {scale:g})"
    return f"amplify in base (c = {scale:g})"


def _edit_of(g: pd.DataFrame) -> str:
    return str(g["edit"].iloc[0]) if "edit" in g and len(g) else "readout"


def markdown(effects: pd.DataFrame, confidence: float) -> str:
    h = headline(effects)
    lines = [f"Power: 'detectable' is the smallest accuracy change the selected set's {confidence:.0%} interval "
             "excludes from 0 with 80% probability on these items (from the spread of its per-item changes; "
             "`mediation.effects.detectable_change`).", "",
             f"| edit | subset | n | unedited acc | selected set: change [{confidence:.0%} CI] | detectable | "
             f"random sets (mean): change [{confidence:.0%} CI] |",
             "|---|---|---|---|---|---|---|"]
    for (mode, scale, task), g in h.groupby(["mode", "scale", "task"], sort=False):
        sel = g[g["set"] == "selected"]
        rnd = g[g["set"] == "random"]
        edit = edit_label(mode, scale, _edit_of(g))
        ref = sel if len(sel) else rnd
        lines.append(f"| {edit} | {task} | {int(ref['n'].iloc[0])} | {ref['acc_unedited'].iloc[0]:.3f} | "
                     f"{_fmt(sel.iloc[0]) if len(sel) else '-'} | "
                     f"{f'{sel.iloc[0].detectable:.3f}' if len(sel) else '-'} | {_fmt(rnd.iloc[0]) if len(rnd) else '-'} |")
    return "\n".join(lines) + "\n"


def plot_effects(effects: pd.DataFrame, path, confidence: float = 0.95) -> None:
    """One panel per edit; per pooled subset, the selected set's change beside the random sets', with intervals."""
    h = headline(effects) if len(effects) else effects
    if not len(h):
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, "The compact set is empty: nothing was edited.", ha="center", va="center")
        ax.axis("off")
        save_figure(fig, path)
        return
    edits = list(dict.fromkeys(zip(h["mode"], h["scale"])))
    fig, axes = plt.subplots(1, max(1, len(edits)), figsize=(4.5 * max(1, len(edits)), 3.8), squeeze=False, sharey=True)
    for ax, (mode, scale) in zip(axes[0], edits):
        g = h[(h["mode"] == mode) & (h["scale"] == scale)]
        subs = list(dict.fromkeys(g["task"]))
        x = np.arange(len(subs))
        for off, set_, colour in ((-0.2, "selected", "tab:red"), (0.2, "random", "tab:grey")):
            s = g[g["set"] == set_].set_index("task").reindex(subs)
            err = np.vstack([s["diff"] - s["ci_low"], s["ci_high"] - s["diff"]])
            ax.bar(x + off, s["diff"], 0.4, yerr=err, capsize=3, color=colour,
                   label="selected set" if set_ == "selected" else "random sets (mean)")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [s.replace("all ", "") for s in subs], rotation=20)
        ax.set_title(edit_label(mode, scale, _edit_of(g)), fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel(f"accuracy change ({confidence:.0%} CI)")
    fig.suptitle("Interventions on the generalization features")
    save_figure(fig, path)
