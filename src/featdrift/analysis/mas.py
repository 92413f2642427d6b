"""Model attribution score of a multi-model (e.g. three-way) crosscoder.

MAS_{m,k} = ||W_dec,k^m|| / sum_m' ||W_dec,k^m'||; the argmax names the owner.
Models are named by role: `base`, and the run of a checkpoint (`sft-125` -> `sft`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..models import parse_model
from ..settings import DriftSettings
from .decoders import decoder_norms, norm_shares


def roles(models: list[str]) -> list[str]:
    """Column names for the models: their run (`base`, `sft`, `rl`), or the full names if runs repeat."""
    r = [parse_model(m)[0] for m in models]
    return r if len(set(r)) == len(r) else list(models)


def mas_table(w_dec: torch.Tensor, models: list[str], cfg: DriftSettings | dict) -> pd.DataFrame:
    """One row per feature: feature, norm_<role>, mas_<role> per model, owner (role; "none" if all norms are 0)."""
    names = roles(models)
    norms = decoder_norms(w_dec, DriftSettings.of(cfg, "norm").norm)
    shares = norm_shares(norms).numpy().astype(np.float64)
    df = pd.DataFrame({"feature": np.arange(w_dec.shape[1], dtype=np.int32)})
    for i, r in enumerate(names):
        df[f"norm_{r}"] = norms[i].numpy().astype(np.float64)
    for i, r in enumerate(names):
        df[f"mas_{r}"] = shares[i]
    dead = np.isnan(shares).all(axis=0)
    owner = np.array(names, dtype=object)[np.nan_to_num(shares, nan=-1.0).argmax(axis=0)]
    owner[dead] = "none"
    df["owner"] = owner
    return df


def owner_counts(table: pd.DataFrame, models: list[str], exclusive: float) -> pd.DataFrame:
    """owner, n_features, fraction, n_exclusive (owner's MAS >= exclusive), fraction_exclusive.

    One row per model role (zero counts kept), then "none". The argmax alone also names an owner
    for features all models share about equally; n_exclusive counts only clear owners.
    """
    order = roles(models) + ["none"]
    counts = table["owner"].value_counts()
    top = table[[c for c in table.columns if c.startswith("mas_")]].max(axis=1)
    excl = table.loc[top >= exclusive, "owner"].value_counts()
    n = len(table)
    frac = lambda c: c / n if n else float("nan")
    return pd.DataFrame({
        "owner": order,
        "n_features": [int(counts.get(o, 0)) for o in order],
        "fraction": [frac(counts.get(o, 0)) for o in order],
        "n_exclusive": [int(excl.get(o, 0)) for o in order],
        "fraction_exclusive": [frac(excl.get(o, 0)) for o in order],
    })
