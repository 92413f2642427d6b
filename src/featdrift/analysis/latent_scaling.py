"""Latent scaling (Minder et al. 2025, arXiv 2504.02922): is a model-specific latent absent from the other models?

Why: NRN and MAS read decoder norms only, and a crosscoder's sparsity pressure can drive latent j's decoder
in model m to (near) zero although m's activations still carry the direction: the shrunk decoder is cheaper
than the reconstruction error it leaves (complete shrinkage), or other latents rebuild the direction in m
(latent decoupling). Norms then call j specific to one model. Latent scaling asks the activations instead:
with d_j latent j's decoder in the model it is specific to and f_j(x) its joint activation, the
least-squares scale that best explains a target y_m of model m (scaled units) is

    beta_m = sum_x f_j(x) (d_j . y_m(x)) / (||d_j||^2 sum_x f_j(x)^2),

for the reconstruction y_m = xhat_m (does the rest of the dictionary rebuild d_j in m?) and the error with
j's own term put back, y_m = x_m - (xhat_m - f_j W_dec,j^m) (is d_j in what m's reconstruction misses?).
nu = beta_other / beta_specific is ~0 where the other model lacks the direction and ~1 where it carries it
as strongly as the specific model. Sums stream over batches in float64: memory O(latents x models + d).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from ..dictionaries.model import Dictionary


@torch.no_grad()
def latent_betas(D: Dictionary, batches: Iterable[torch.Tensor], specific: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beta_recon, beta_error), each (M, n) float64, of raw activation batches (rows, M, d).

    `specific` (n,) holds per latent the index of the model whose decoder is d_j, or -1 to skip the latent.
    Skipped latents, and latents that never fire on the batches, are NaN."""
    specific = np.asarray(specific, dtype=np.int64)
    beta_recon = np.full((D.M, D.n), np.nan)
    beta_error = np.full((D.M, D.n), np.nan)
    idx = torch.as_tensor(np.flatnonzero(specific >= 0))
    if not len(idx):
        return beta_recon, beta_error
    W = D.W_dec.detach()
    d = W[torch.as_tensor(specific)[idx], idx]  # (K, d): d_j, in the specific model
    num_recon = torch.zeros(D.M, len(idx), dtype=torch.float64)
    num_error = torch.zeros(D.M, len(idx), dtype=torch.float64)
    ff = torch.zeros(len(idx), dtype=torch.float64)
    for x in batches:
        f = D.encode(x)
        xhat = D.decode_scaled(f)
        fj = f[:, idx].double()  # (B, K)
        num_recon += (fj * torch.einsum("bmd,kd->mbk", xhat, d).double()).sum(1)
        num_error += (fj * torch.einsum("bmd,kd->mbk", D.scale(x) - xhat, d).double()).sum(1)
        ff += fj.pow(2).sum(0)
    # j's own term f_j W_dec,j^m, put back into the error: sum_x f_j^2 (d_j . W_dec,j^m).
    num_error += torch.einsum("mkd,kd->mk", W[:, idx].double(), d.double()) * ff
    den = d.double().pow(2).sum(-1) * ff
    den = torch.where(den > 0, den, torch.nan)
    beta_recon[:, idx.numpy()] = (num_recon / den).numpy()
    beta_error[:, idx.numpy()] = (num_error / den).numpy()
    return beta_recon, beta_error


def scaling_ratios(beta: np.ndarray, specific: np.ndarray) -> np.ndarray:
    """(M, n) betas -> (M, n) nu[m, j] = beta[m, j] / beta[specific_j, j].

    NaN for the specific model itself, for skipped latents (specific -1), and where beta of the specific
    model is not positive (the latent does not explain its own model: no scale to compare against)."""
    specific = np.asarray(specific, dtype=np.int64)
    M, n = beta.shape
    own = np.full(n, np.nan)
    rows = specific >= 0
    own[rows] = beta[specific[rows], np.flatnonzero(rows)]
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = np.where(own > 0, beta / own, np.nan)
    nu[specific[rows], np.flatnonzero(rows)] = np.nan
    return nu


def truly_specific(nu_recon: np.ndarray, nu_error: np.ndarray, specific: np.ndarray, max_ratio: float) -> np.ndarray:
    """(n,) bool: latent j is specific and every other model has |nu_recon| and |nu_error| < max_ratio.

    The absolute value: a strongly negative ratio means the other model carries -d_j, not that it lacks it.
    A NaN ratio (latent never fired, or no positive own scale) is never below the threshold."""
    specific = np.asarray(specific, dtype=np.int64)
    other = np.arange(nu_recon.shape[0])[:, None] != specific[None, :]
    with np.errstate(invalid="ignore"):
        ok = (np.abs(nu_recon) < max_ratio) & (np.abs(nu_error) < max_ratio)
    return (specific >= 0) & np.where(other, ok, True).all(axis=0)
