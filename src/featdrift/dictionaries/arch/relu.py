"""ReLU dictionaries: f = relu(pre), sparsity from an L1 penalty weighted by decoder norms.

The penalty sum_k f_k sum_m ||W_dec,k^m|| (Anthropic's crosscoder loss) makes the
decoder norms meaningful without normalising them, which is what the drift metrics
read. Its weight ramps up from 0 over the first `l1_warmup` of training so that
latents are not killed before they have found directions. Inference and the
per-model readout are the same ReLU, so there is nothing to calibrate.

Designated shared latents (Anthropic, "Insights on Crosscoder Model Diffing", 2025): in a
crosscoder, the first `shared_fraction` of the latents have one decoder for every model (tied)
and pay `shared_l1` times the penalty. Without them, a change that fires with something the
base already represents is cheapest as one latent whose decoders differ (base: the context
c, tuned: c + p; |c + p| <= |c| + |p|), which NRN calls shared; with cheap tied latents
for the contexts, p is cheaper on a latent of its own. An SAE (one model) ignores them.
"""

from __future__ import annotations

import torch

from . import Architecture, Training


def n_shared(D, cfg) -> int:
    """How many designated shared latents dictionary D has: none for an SAE."""
    return round(cfg.shared_fraction * D.n) if D.M > 1 else 0


class ReLUTraining(Training):
    def __init__(self, D, cfg, steps):
        super().__init__(D, cfg, steps)
        self.ns = n_shared(D, cfg)
        if self.ns:
            self.after_step()  # tie the initial decoders

    def decode(self, step, f, W_dec, b_dec):
        if self.ns:  # the shared rows decode with model 0's decoder in every model (the gradient goes there)
            d = self.D.d
            W_dec = torch.cat([W_dec[: self.ns, :d].repeat(1, self.D.M), W_dec[self.ns:]])
        return torch.addmm(b_dec, f, W_dec)

    def loss(self, step, pre, f, xs, xhat, W_dec, dead):
        lam = self.cfg.l1_coeff * min(1.0, (step + 1) / max(1, int(self.steps * self.cfg.l1_warmup)))
        weight = self.D.dec_norms().sum(0)
        if self.ns:
            own = self.D.W_dec[0, : self.ns].norm(dim=-1) * self.D.M * self.cfg.shared_l1
            weight = torch.cat([own, weight[self.ns:]])
        sparsity = (f @ weight).mean()
        return lam * sparsity, torch.zeros(())

    def after_step(self):
        if self.ns:
            with torch.no_grad():
                self.D.W_dec[1:, : self.ns] = self.D.W_dec[0, : self.ns]


class ReLU(Architecture):
    name = "relu"
    saelens_name = "standard"
    cfg_keys = ("l1_coeff",)  # shared_fraction, shared_l1: in cfg.json's "train", where set
    training = ReLUTraining

    def activate(self, D, pre, train=False, threshold=None):
        return torch.relu(pre)


ARCHITECTURE = ReLU()
