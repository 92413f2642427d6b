"""Decoder matrices of a dictionary directory and their per-feature norms.

Norms are taken on W_dec as stored, i.e. in the dictionary's scaled units (every model's
activations scaled to E||x|| = sqrt(d)), so that no model's norms are inflated by a
larger raw activation scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open

NORMS = ("l2", "l1")


def read_decoder(dict_dir) -> tuple[torch.Tensor, dict]:
    """`W_dec` (M, n_latents, d_model) as float32 and cfg.json of a dictionary directory.

    Only the decoder is read from weights.safetensors (the encoder is not needed here).
    """
    dict_dir = Path(dict_dir)
    cfg = json.loads((dict_dir / "cfg.json").read_text())
    with safe_open(str(dict_dir / "weights.safetensors"), framework="pt") as f:
        w = f.get_tensor("W_dec").float()
    if w.ndim != 3 or w.shape[0] != len(cfg["models"]):
        raise ValueError(f"{dict_dir}: W_dec has shape {tuple(w.shape)}, expected ({len(cfg['models'])}, n_latents, d_model)")
    return w, cfg


def decoder_norms(w_dec: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """(M, n, d) -> (M, n): ||W_dec,k^m||_2, or ||W_dec,k^m||_1 / sqrt(d) for norm="l1"."""
    if norm == "l2":
        return w_dec.norm(dim=-1)
    if norm == "l1":
        return w_dec.abs().sum(dim=-1) / math.sqrt(w_dec.shape[-1])
    raise ValueError(f"unknown decoder norm {norm!r} (known: {', '.join(NORMS)})")


def norm_shares(norms: torch.Tensor) -> torch.Tensor:
    """(M, n) norms -> (M, n) shares norms[m] / sum_m' norms[m']; NaN where every norm is 0."""
    total = norms.sum(dim=0, keepdim=True)
    return torch.where(total > 0, norms / total.clamp_min(torch.finfo(norms.dtype).tiny), torch.nan)
