"""TopK dictionaries (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with AuxK.

Each token keeps its own k largest entries of relu(pre): training and inference are the
same function of one token, so nothing is calibrated after training, and each model's
readout is the top-k of its own pre-activation. Because only k latents are active per
token, training decodes sparsely: the k decoder rows of each token are gathered
(`embedding_bag`), so the decoder's forward and backward cost B*k*d instead of B*n*d,
which is what lets n = 32,768 latents train at the paper's width. The decoder is kept
at joint norm 1 per latent, as for BatchTopK, and AuxK revives dead latents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import Architecture
from .batchtopk import AuxKTraining


def topk_parts(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, latent ids), each (..., k): the k largest entries of relu(pre) per row (ties: torch.topk's order)."""
    vals, idx = pre.topk(min(k, pre.shape[-1]), dim=-1, sorted=False)
    return torch.relu(vals), idx


def dense_code(pre: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The (..., n) code, shaped like `pre`, with `vals` at latents `idx` and zero elsewhere."""
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def topk_code(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Dense code (..., n): the row's top-k entries of relu(pre), zero elsewhere."""
    return dense_code(pre, *topk_parts(pre, k))


def sparse_decode(vals: torch.Tensor, idx: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor) -> torch.Tensor:
    """b_dec + sum_j vals[:, j] W_dec[idx[:, j]] for (B, k) codes and a (n, D) decoder: the dense
    f @ W_dec without touching the n - k silent rows, forward or backward."""
    return b_dec + F.embedding_bag(idx, W_dec, per_sample_weights=vals, mode="sum")


class TopKTraining(AuxKTraining):
    def __init__(self, D, cfg, steps):
        super().__init__(D, cfg, steps)
        self._parts = None

    def activate(self, step, pre):
        self._parts = topk_parts(pre, self.D.k)
        return dense_code(pre, *self._parts)

    def decode(self, step, f, W_dec, b_dec):
        vals, idx = self._parts
        return sparse_decode(vals, idx, W_dec, b_dec)


class TopK(Architecture):
    name = "topk"
    saelens_name = "topk"
    cfg_keys = ("k",)
    training = TopKTraining
    elementwise_readout = False  # a latent fires only if it beats the token's other latents

    def setup(self, D):
        if not D.k:
            raise ValueError("arch topk needs k")

    def activate(self, D, pre, train=False, threshold=None):
        return topk_code(pre, D.k)

    def readout(self, D, m, pre):
        return topk_code(pre, D.k)

    def saelens_cfg(self, D):
        return {"k": int(D.k)}


ARCHITECTURE = TopK()
