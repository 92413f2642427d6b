"""ReLU dictionaries: f = relu(pre), sparsity from an L1 penalty weighted by decoder norms.

The penalty sum_k f_k sum_m ||W_dec,k^m|| (Anthropic's crosscoder loss) makes the
decoder norms meaningful without normalising them, which is what the drift metrics
read. Its weight ramps up from 0 over the first `l1_warmup` of training so that
latents are not killed before they have found directions. Inference and the
per-model readout are the same ReLU, so there is nothing to calibrate.
"""

from __future__ import annotations

import torch

from . import Architecture, Training


class ReLUTraining(Training):
    def loss(self, step, pre, f, xs, xhat, W_dec, dead):
        lam = self.cfg.l1_coeff * min(1.0, (step + 1) / max(1, int(self.steps * self.cfg.l1_warmup)))
        sparsity = (f @ self.D.dec_norms().sum(0)).mean()
        return lam * sparsity, torch.zeros(())


class ReLU(Architecture):
    name = "relu"
    saelens_name = "standard"
    cfg_keys = ("l1_coeff",)
    training = ReLUTraining

    def activate(self, D, pre, train=False, threshold=None):
        return torch.relu(pre)


ARCHITECTURE = ReLU()
