"""Model attribution score of a multi-model (e.g. three-way) crosscoder.

MAS_{m,k} = ||W_dec,k^m|| / sum_m' ||W_dec,k^m'||; the argmax names the owner.
Models are named by role: `base`, and the run of a checkpoint (`sft-125` -> `sft`). Latent scaling
(latent_scaling.py) checks, on activations, that an exclusively owned feature is really absent from
every other model (truly_exclusive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..models import parse_model
from ..settings import DriftSettings
from .decoders import decoder_norms, norm_shares
from .latent_scaling import scaling_ratios, truly_specific


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


def exclusive_owners(table: pd.DataFrame, models: list[str], exclusive: float) -> np.ndarray:
    """Per feature the index in `models` of its owner where the owner's MAS >= exclusive, else -1."""
    mas = table[[f"mas_{r}" for r in roles(models)]].to_numpy()
    top = np.nan_to_num(mas, nan=-1.0)
    return np.where(top.max(axis=1) >= exclusive, top.argmax(axis=1), -1)


def with_latent_scaling(table: pd.DataFrame, models: list[str], beta_recon: np.ndarray, beta_error: np.ndarray,
                        cfg: DriftSettings | dict) -> pd.DataFrame:
    """The MAS table plus, for exclusively owned features, nu_recon_<role> and nu_error_<role> (beta of that
    model / beta of the owner; NaN for the owner itself and for features not owned exclusively) and
    truly_exclusive (every other model's ratios below drift.latent_scaling.max_ratio).

    beta_* are (M, n) in `models` order (latent_scaling.latent_betas of `exclusive_owners`)."""
    cfg = DriftSettings.of(cfg, "mas", "latent_scaling")
    owner = exclusive_owners(table, models, cfg.mas.exclusive)
    nu_recon, nu_error = scaling_ratios(beta_recon, owner), scaling_ratios(beta_error, owner)
    out = table.copy()
    for i, r in enumerate(roles(models)):
        out[f"nu_recon_{r}"] = nu_recon[i]
    for i, r in enumerate(roles(models)):
        out[f"nu_error_{r}"] = nu_error[i]
    out["truly_exclusive"] = truly_specific(nu_recon, nu_error, owner, cfg.latent_scaling.max_ratio)
    return out


def owner_counts(table: pd.DataFrame, models: list[str], exclusive: float) -> pd.DataFrame:
    """owner, n_features, fraction, n_exclusive (owner's MAS >= exclusive), fraction_exclusive,
    n_exclusive_scaled (exclusive and kept by latent scaling: the table's truly_exclusive).

    One row per model role (zero counts kept), then "none". The argmax alone also names an owner
    for features all models share about equally; n_exclusive counts only clear owners.
    """
    order = roles(models) + ["none"]
    counts = table["owner"].value_counts()
    is_excl = exclusive_owners(table, models, exclusive) >= 0
    excl = table.loc[is_excl, "owner"].value_counts()
    scaled = table.loc[is_excl & table["truly_exclusive"].to_numpy(), "owner"].value_counts()
    n = len(table)
    frac = lambda c: c / n if n else float("nan")
    return pd.DataFrame({
        "owner": order,
        "n_features": [int(counts.get(o, 0)) for o in order],
        "fraction": [frac(counts.get(o, 0)) for o in order],
        "n_exclusive": [int(excl.get(o, 0)) for o in order],
        "fraction_exclusive": [frac(excl.get(o, 0)) for o in order],
        "n_exclusive_scaled": [int(scaled.get(o, 0)) for o in order],
    })
