"""Relative decoder norm of pairwise (base, tuned) crosscoders.

NRN_k = ||W_dec,k^T|| / (||W_dec,k^B|| + ||W_dec,k^T||): ~1 tuned-specific,
~0 base-specific, in between shared. A feature whose decoders are both zero has
no NRN and the class "dead".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..models import parse_model
from ..settings import DriftSettings
from .decoders import decoder_norms, norm_shares

CLASSES = ("base_specific", "shared", "tuned_specific", "dead")


def classify(nrn: np.ndarray, base_max: float, tuned_min: float) -> np.ndarray:
    """base_specific (NRN <= base_max), tuned_specific (NRN >= tuned_min), shared otherwise, dead if NaN."""
    out = np.full(nrn.shape, "shared", dtype=object)
    out[nrn <= base_max] = "base_specific"
    out[nrn >= tuned_min] = "tuned_specific"
    out[np.isnan(nrn)] = "dead"
    return out


def nrn_features(w_dec: torch.Tensor, models: list[str], cfg: DriftSettings | dict) -> pd.DataFrame:
    """One row per feature of one pairwise crosscoder with models [base, tuned] (either order).

    Columns: feature, norm_base, norm_tuned, nrn, class.
    """
    cfg = DriftSettings.of(cfg, "norm", "nrn")
    if len(models) != 2 or "base" not in models:
        raise ValueError(f"a pairwise crosscoder needs models ['base', <checkpoint>], got {models}")
    b = models.index("base")
    norms = decoder_norms(w_dec, cfg.norm)
    nrn = norm_shares(norms)[1 - b].numpy().astype(np.float64)
    return pd.DataFrame({
        "feature": np.arange(w_dec.shape[1], dtype=np.int32),
        "norm_base": norms[b].numpy().astype(np.float64),
        "norm_tuned": norms[1 - b].numpy().astype(np.float64),
        "nrn": nrn,
        "class": classify(nrn, cfg.nrn.base_specific, cfg.nrn.tuned_specific),
    })


def nrn_table(dicts: dict[str, tuple[torch.Tensor, list[str]]], cfg: DriftSettings | dict) -> pd.DataFrame:
    """Per-feature NRN of every pairwise crosscoder: `dicts` maps checkpoint name -> (W_dec, models).

    Columns: model, run, step, feature, norm_base, norm_tuned, nrn, class.
    """
    cfg = DriftSettings.of(cfg, "norm", "nrn")
    frames = []
    for model, (w_dec, models) in dicts.items():
        run, step = parse_model(model)
        df = nrn_features(w_dec, models, cfg)
        df.insert(0, "step", np.int64(step))
        df.insert(0, "run", run)
        df.insert(0, "model", model)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["run", "step", "feature"], kind="stable", ignore_index=True)


def nrn_summary(table: pd.DataFrame, cfg: DriftSettings | dict) -> pd.DataFrame:
    """Per checkpoint: features per class (n_*, frac_*), tail mass P(NRN > tail), mean and median NRN."""
    tail = DriftSettings.of(cfg, "nrn").nrn.tail
    rows = []
    for (model, run, step), g in table.groupby(["model", "run", "step"], sort=False):
        n = len(g)
        row = {"model": model, "run": run, "step": int(step), "n_features": n}
        counts = g["class"].value_counts()
        for c in CLASSES:
            row[f"n_{c}"] = int(counts.get(c, 0))
        for c in CLASSES:
            row[f"frac_{c}"] = row[f"n_{c}"] / n if n else float("nan")
        alive = g["nrn"].dropna()
        row["tail_mass"] = float((alive > tail).sum() / n) if n else float("nan")
        row["mean_nrn"] = float(alive.mean()) if len(alive) else float("nan")
        row["median_nrn"] = float(alive.median()) if len(alive) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["run", "step"], kind="stable", ignore_index=True)
