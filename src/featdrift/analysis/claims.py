"""The paper's three claims, decided from this run's drift tables (never assumed).

Each claim has several comparisons of an SFT number with an RL number. A claim's
verdict is "yes" when every comparison that could be computed supports it, "no"
when none does, "mixed" otherwise, and "unknown" when none could be computed.
"""

from __future__ import annotations

import math

import pandas as pd

from ..settings import DriftSettings

CLAIMS = {
    "more_tuned_specific": "SFT makes more tuned-specific features than RL",
    "earlier_stabilization": "SFT's feature set stabilizes earlier than RL's",
    "base_preservation": "RL preserves the base representation better than SFT",
}
COLUMNS = ["claim", "statement", "evidence", "sft", "rl", "expected", "supports", "verdict"]


def _final(df: pd.DataFrame, run: str, col: str) -> float:
    g = df[df["run"] == run]
    return float(g.loc[g["step"].idxmax(), col]) if len(g) else float("nan")


def _get(df: pd.DataFrame, key: str, value: str, col: str) -> float:
    g = df[df[key] == value]
    return float(g[col].iloc[0]) if len(g) else float("nan")


def _row(claim: str, evidence: str, sft: float, rl: float, expected: str) -> dict:
    """`expected` reads "<run> <op> <run>", e.g. "rl < sft"; supports is None when a number is missing."""
    left, op, right = expected.split()
    v = {"sft": sft, "rl": rl}
    if math.isnan(sft) or math.isnan(rl):
        supports = None
    else:
        supports = bool(v[left] > v[right]) if op == ">" else bool(v[left] < v[right])
    return {"claim": claim, "statement": CLAIMS[claim], "evidence": evidence, "sft": sft, "rl": rl,
            "expected": expected, "supports": supports}


def _verdict(supports: list) -> str:
    known = [s for s in supports if s is not None]
    if not known:
        return "unknown"
    return "yes" if all(known) else "no" if not any(known) else "mixed"


def claims_table(nrn_summary: pd.DataFrame, stab_summary: pd.DataFrame, mas_owners: pd.DataFrame,
                 pres_summary: pd.DataFrame, cfg: DriftSettings | dict) -> pd.DataFrame:
    """One row per comparison: claim, statement, evidence, sft, rl, expected, supports, verdict."""
    cfg = DriftSettings.of(cfg, "nrn", "mas", "stabilization", "preservation", "latent_scaling")
    n, s, p = cfg.nrn, cfg.stabilization, cfg.preservation
    rows = [
        _row("more_tuned_specific", f"tuned-specific features (NRN >= {n.tuned_specific}), final checkpoint",
             _final(nrn_summary, "sft", "n_tuned_specific"), _final(nrn_summary, "rl", "n_tuned_specific"), "sft > rl"),
        _row("more_tuned_specific", f"tuned-specific features that latent scaling keeps (nu_error and nu_recon "
                                    f"< {cfg.latent_scaling.max_ratio}), final checkpoint",
             _final(nrn_summary, "sft", "n_tuned_specific_scaled"), _final(nrn_summary, "rl", "n_tuned_specific_scaled"),
             "sft > rl"),
        _row("more_tuned_specific", f"tail mass P(NRN > {n.tail}), final checkpoint",
             _final(nrn_summary, "sft", "tail_mass"), _final(nrn_summary, "rl", "tail_mass"), "sft > rl"),
        _row("more_tuned_specific", f"features owned exclusively (MAS >= {cfg.mas.exclusive}) in the three-way crosscoder",
             _get(mas_owners, "owner", "sft", "n_exclusive"), _get(mas_owners, "owner", "rl", "n_exclusive"), "sft > rl"),
        _row("earlier_stabilization",
             f"fraction of training after which top-{s.k} overlap with the final set stays >= {s.stable_overlap}",
             _get(stab_summary, "run", "sft", "stable_fraction"), _get(stab_summary, "run", "rl", "stable_fraction"),
             "sft < rl"),
        _row("earlier_stabilization", f"mean top-{s.k} overlap with the final checkpoint's set (tau {s.tau})",
             _get(stab_summary, "run", "sft", "mean_overlap_final"), _get(stab_summary, "run", "rl", "mean_overlap_final"),
             "sft > rl"),
        _row("base_preservation", "base-SAE FVU, final checkpoint",
             _final(pres_summary, "sft", "fvu"), _final(pres_summary, "rl", "fvu"), "rl < sft"),
        _row("base_preservation", "base-SAE CE-loss recovered, final checkpoint",
             _final(pres_summary, "sft", "ce_recovered"), _final(pres_summary, "rl", "ce_recovered"), "rl > sft"),
        _row("base_preservation", f"base-SAE features died + born (drop > {p.drop}), final checkpoint",
             _final(pres_summary, "sft", "n_died") + _final(pres_summary, "sft", "n_born"),
             _final(pres_summary, "rl", "n_died") + _final(pres_summary, "rl", "n_born"), "rl < sft"),
    ]
    df = pd.DataFrame(rows)
    df["verdict"] = df["claim"].map({c: _verdict(list(g["supports"])) for c, g in df.groupby("claim", sort=False)})
    return df[COLUMNS]


def claims_markdown(df: pd.DataFrame) -> str:
    """The claims table as Markdown: one verdict line per claim, then its evidence rows."""
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
    lines = []
    for claim, g in df.groupby("claim", sort=False):
        lines += [f"### {g['statement'].iloc[0]}: **{g['verdict'].iloc[0]}**", "",
                  "| evidence | SFT | RL | expected | supports |", "|---|---|---|---|---|"]
        for r in g.itertuples():
            sup = "n/a" if r.supports is None else ("yes" if r.supports else "no")
            lines.append(f"| {r.evidence} | {fmt(r.sft)} | {fmt(r.rl)} | {r.expected} | {sup} |")
        lines.append("")
    return "\n".join(lines)
