"""Relative decoder norm of pairwise (base, tuned) crosscoders.

NRN_k = ||W_dec,k^T|| / (||W_dec,k^B|| + ||W_dec,k^T||): ~1 tuned-specific,
~0 base-specific, in between shared. A feature whose decoders are both zero has
no NRN and the class "dead". Latent scaling (latent_scaling.py) then checks, on activations,
that a tuned- or base-specific feature is really absent from the other model (truly_specific).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..models import parse_model
from ..settings import DriftSettings
from .decoders import decoder_norms, norm_shares
from .latent_scaling import scaling_ratios, truly_specific

CLASSES = ("base_specific", "shared", "tuned_specific", "dead")
SCALING = ("beta_recon_base", "beta_recon_tuned", "beta_error_base", "beta_error_tuned", "nu_recon", "nu_error",
           "truly_specific")


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


def specific_models(classes: np.ndarray, models: list[str]) -> np.ndarray:
    """Per feature the index in `models` of the model NRN calls it specific to: tuned for tuned_specific,
    base for base_specific, -1 for shared and dead features (latent scaling skips them)."""
    b = models.index("base")
    out = np.full(len(classes), -1, dtype=np.int64)
    out[classes == "tuned_specific"] = 1 - b
    out[classes == "base_specific"] = b
    return out


def with_latent_scaling(table: pd.DataFrame, betas: dict[str, tuple[list[str], np.ndarray, np.ndarray]],
                        cfg: DriftSettings | dict) -> pd.DataFrame:
    """The NRN table plus the latent scaling of its tuned- and base-specific features (NaN / False for others).

    `betas` maps checkpoint -> (models, beta_recon, beta_error) with (M, n) betas in the crosscoder's model
    order (latent_scaling.latent_betas of `specific_models`). nu_* = beta of the other model / beta of the
    specific one; truly_specific: both below drift.latent_scaling.max_ratio."""
    max_ratio = DriftSettings.of(cfg, "latent_scaling").latent_scaling.max_ratio
    frames = []
    for model, g in table.groupby("model", sort=False):
        models, recon, error = betas[model]
        g = g.sort_values("feature")
        b, t = models.index("base"), 1 - models.index("base")
        spec = specific_models(g["class"].to_numpy(), models)
        j = np.arange(len(g))
        other = np.where(spec == b, t, b)
        nu_recon, nu_error = scaling_ratios(recon, spec), scaling_ratios(error, spec)
        cols = {"beta_recon_base": recon[b], "beta_recon_tuned": recon[t], "beta_error_base": error[b],
                "beta_error_tuned": error[t], "nu_recon": nu_recon[other, j], "nu_error": nu_error[other, j],
                "truly_specific": truly_specific(nu_recon, nu_error, spec, max_ratio)}
        frames.append(g.assign(**cols))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["run", "step", "feature"], kind="stable", ignore_index=True)


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
    """Per checkpoint: features per class (n_*, frac_*), the tuned- and base-specific ones latent scaling keeps
    (n_*_scaled), tail mass P(NRN > tail), mean and median NRN."""
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
        for c in ("tuned_specific", "base_specific"):
            row[f"n_{c}_scaled"] = int(((g["class"] == c) & g["truly_specific"]).sum())
        alive = g["nrn"].dropna()
        row["tail_mass"] = float((alive > tail).sum() / n) if n else float("nan")
        row["mean_nrn"] = float(alive.mean()) if len(alive) else float("nan")
        row["median_nrn"] = float(alive.median()) if len(alive) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["run", "step"], kind="stable", ignore_index=True)
