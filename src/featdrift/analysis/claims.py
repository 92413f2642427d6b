"""The paper's three claims, decided from this run's drift tables (never assumed).

Each claim has several comparisons of an SFT number with an RL number. A claim's
verdict is "yes" when every comparison that could be computed supports it, "no"
when none does, "mixed" otherwise, and "unknown" when none could be computed.
Dictionaries are trained from several seeds (drift.seeds): each seed's tables are
decided alone (claims_table), and a claim holds only when every seed says so
(claims_over_seeds), so that no verdict rests on one dictionary initialisation.
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
# The table over seeds: each seed's rows and verdict (seed_verdict), and the verdict over seeds.
SEED_COLUMNS = ["claim", "statement", "evidence", "seed", "sft", "rl", "expected", "supports", "seed_verdict",
                "verdict"]


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
        _row("base_preservation", f"base-SAE features died + born (on their contexts, drop > {p.drop}), final checkpoint",
             _final(pres_summary, "sft", "n_died") + _final(pres_summary, "sft", "n_born"),
             _final(pres_summary, "rl", "n_died") + _final(pres_summary, "rl", "n_born"), "rl < sft"),
    ]
    df = pd.DataFrame(rows)
    df["verdict"] = df["claim"].map({c: _verdict(list(g["supports"])) for c, g in df.groupby("claim", sort=False)})
    return df[COLUMNS]


def _over_seeds(verdicts: list[str]) -> str:
    """yes (no) only when every seed's verdict is yes (no); unknown when no seed's is known; else mixed.

    A seed whose verdict is unknown or mixed does not support the claim, so it makes the verdict mixed."""
    if all(v == "unknown" for v in verdicts):
        return "unknown"
    if all(v == "yes" for v in verdicts):
        return "yes"
    return "no" if all(v == "no" for v in verdicts) else "mixed"


def claims_over_seeds(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Per-seed claims tables (dictionary seed offset -> claims_table) as one table, seeds in order.

    Columns SEED_COLUMNS: each seed's rows with its own verdict as seed_verdict, and verdict, the
    claim's verdict over seeds (_over_seeds), repeated on every row of the claim."""
    df = pd.concat([t.assign(seed=int(s)) for s, t in sorted(tables.items())], ignore_index=True)
    df = df.rename(columns={"verdict": "seed_verdict"})
    per_seed = df.groupby(["claim", "seed"], sort=False)["seed_verdict"].first()
    verdict = {c: _over_seeds(list(g)) for c, g in per_seed.groupby(level="claim", sort=False)}
    df["verdict"] = df["claim"].map(verdict)
    return df[SEED_COLUMNS]


def seed_spread(df: pd.DataFrame) -> pd.DataFrame:
    """Per claim and evidence row, the spread of the SFT and RL numbers over seeds (NaN numbers left out).

    Columns: claim, evidence, n_seeds (seeds with both numbers), {sft,rl}_{min,max,mean,sd} (sd over
    seeds, ddof 1; NaN with one seed)."""
    rows = []
    for (claim, evidence), g in df.groupby(["claim", "evidence"], sort=False):
        row = {"claim": claim, "evidence": evidence, "n_seeds": int((g["sft"].notna() & g["rl"].notna()).sum())}
        for run in ("sft", "rl"):
            v = g[run].dropna().astype(float)
            row.update({f"{run}_min": v.min(), f"{run}_max": v.max(), f"{run}_mean": v.mean(), f"{run}_sd": v.std(ddof=1)})
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _range(lo: float, hi: float) -> str:
    if math.isnan(lo):
        return "n/a"
    return _fmt(lo) if lo == hi else f"{_fmt(lo)} to {_fmt(hi)}"


def claims_markdown(df: pd.DataFrame) -> str:
    """The table over seeds (claims_over_seeds) as Markdown: per claim the verdict over seeds and each
    seed's, then per evidence row the SFT and RL number of every seed, their range, and whether each supports."""
    sup = lambda v: "n/a" if v is None or v != v else ("yes" if v else "no")
    spread = seed_spread(df).set_index(["claim", "evidence"])
    seeds = sorted(df["seed"].unique())
    label = ", ".join(map(str, seeds))
    lines = []
    for claim, g in df.groupby("claim", sort=False):
        per_seed = g.groupby("seed")["seed_verdict"].first()
        lines += [f"### {g['statement'].iloc[0]}: **{g['verdict'].iloc[0]}**", "",
                  "Per dictionary seed: " + ", ".join(f"{s} {per_seed[s]}" for s in seeds) + ".", "",
                  f"| evidence | expected | SFT (seeds {label}) | SFT range | RL (seeds {label}) | RL range "
                  f"| supports (seeds {label}) |", "|---|---|---|---|---|---|---|"]
        for evidence, e in g.groupby("evidence", sort=False):
            e = e.sort_values("seed")
            sp = spread.loc[(claim, evidence)]
            lines.append(f"| {evidence} | {e['expected'].iloc[0]} | {' / '.join(map(_fmt, e['sft']))} "
                         f"| {_range(sp['sft_min'], sp['sft_max'])} | {' / '.join(map(_fmt, e['rl']))} "
                         f"| {_range(sp['rl_min'], sp['rl_max'])} | {' / '.join(map(sup, e['supports']))} |")
        lines.append("")
    return "\n".join(lines)
