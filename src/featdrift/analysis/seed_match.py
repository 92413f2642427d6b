"""Do dictionaries trained from different seeds find the same features?

Every dictionary is trained once per seed offset in drift.seeds. A latent of the primary
replica (offset 0) and a latent of another replica are the same feature when their decoders
point the same way. A latent is represented by its decoder rows of all the dictionary's models
concatenated, (M * d) in stored (scaled) units: a crosscoder latent then matches only one that
writes the same directions in every model, each model weighted by the latent's norm there, so a
model where the latent is nearly absent adds nearly nothing (a per-model cosine averaged over
models would add the noise of that near-zero decoder instead). Latents are paired one-to-one by
stabilization.match (Hungarian: the most pairs with cosine >= drift.seed_match_cos, then the
highest total cosine), among the live latents of each replica: those whose joint code fires on at
least one of the held-out rows the dictionary metrics use (a never-firing latent keeps its random
initial decoder and would count as a disagreement between seeds that says nothing about features).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from .stabilization import match

COLUMNS = ["dict", "seed_a", "seed_b", "n_latents", "n_live_a", "n_live_b", "n_matched", "match_rate", "mean_cos"]


def joint_decoders(w_dec: torch.Tensor) -> torch.Tensor:
    """(M, n, d) -> (n, M * d): each latent's decoder rows of every model, concatenated."""
    return w_dec.permute(1, 0, 2).reshape(w_dec.shape[1], -1)


@torch.no_grad()
def fired_latents(dicts: list, batches: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """Per dictionary (all on the same models), the latents its joint code fires on in some row of `batches`
    (raw activations x (rows, M, d)); the rows are read once for all the dictionaries."""
    fired = [torch.zeros(D.n, dtype=torch.bool) for D in dicts]
    for x in batches:
        for f, D in zip(fired, dicts):
            f |= (D.encode(x) > 0).any(dim=0)
    return fired


def match_rate(w_a: torch.Tensor, w_b: torch.Tensor, live_a: torch.Tensor, live_b: torch.Tensor,
               cos_min: float) -> dict:
    """Match the live latents of decoder w_a (M, n, d) one-to-one with those of w_b by joint decoder cosine.

    match_rate = matched pairs with cosine >= cos_min / live latents of a; mean_cos over those pairs."""
    a, b = joint_decoders(w_a)[live_a], joint_decoders(w_b)[live_b]
    _, _, cos = match(a, b, cos_min)
    n_a = len(a)
    return {"n_latents": int(w_a.shape[1]), "n_live_a": n_a, "n_live_b": len(b), "n_matched": len(cos),
            "match_rate": len(cos) / n_a if n_a else float("nan"),
            "mean_cos": float(cos.mean()) if len(cos) else float("nan")}


def seed_match_table(replicas: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]], cos_min: float,
                     primary: int = 0) -> pd.DataFrame:
    """Per dictionary name and seed offset other than `primary`, the primary's latents matched with that replica's.

    `replicas` maps name -> seed offset -> (W_dec (M, n, d), live mask (n,)). Columns COLUMNS."""
    rows = []
    for name, reps in replicas.items():
        w_a, live_a = reps[primary]
        for seed in sorted(s for s in reps if s != primary):
            w_b, live_b = reps[seed]
            rows.append({"dict": name, "seed_a": primary, "seed_b": int(seed),
                         **match_rate(w_a, w_b, live_a, live_b, cos_min)})
    return pd.DataFrame(rows, columns=COLUMNS)


def seed_match_markdown(table: pd.DataFrame, cos_min: float) -> str:
    """The table as Markdown, one row per (dictionary, replica)."""
    fmt = lambda v: "n/a" if isinstance(v, float) and np.isnan(v) else f"{v:.3g}"
    lines = ["# Do dictionaries trained from different seeds find the same features?", "",
             "Live latents (fire on a held-out probe row) of the primary dictionary (seed offset 0) matched "
             f"one-to-one (Hungarian) with each replica's by the cosine of their decoders of all models "
             f"concatenated; a pair counts at cosine >= {cos_min}. match rate = matched / live latents of the primary.",
             ""]
    if not len(table):
        return "\n".join(lines + ["One dictionary seed (drift.seeds): nothing to match.", ""])
    lines += ["| dictionary | seeds | live latents (primary / replica) | matched | match rate | mean cosine |",
              "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.dict} | {r.seed_a} vs {r.seed_b} | {r.n_live_a} / {r.n_live_b} of {r.n_latents} "
                     f"| {r.n_matched} | {fmt(r.match_rate)} | {fmt(r.mean_cos)} |")
    return "\n".join(lines + [""])
