"""BatchTopK dictionaries (Bussmann et al. 2024) with the AuxK dead-latent loss (Gao et al. 2024).

Training keeps the k * B largest entries of relu(pre) over a batch of B tokens, so
the sparsity is set by k, not by a penalty; the decoder is kept at joint norm 1 per
latent so that the top-k compares latents on the same scale. AuxK reconstructs the
residual from dead latents so that they get a gradient again. A batch top-k is not
a function of one token, so inference uses a global threshold (the mean k-th value
over the second half of training), and each model's own readout a threshold of its
own, calibrated so that it fires as many latents per token as the joint code.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import Architecture, Training

_SAMPLE_STRIDES = (61, 67, 71, 73, 79, 83, 89, 97)  # primes: one of them is coprime with n


def batch_topk_threshold(pre: torch.Tensor, k: int) -> float:
    """The (k * B)-th largest entry of relu(pre) for a (B, n) batch: exact and deterministic.

    Selection without sorting or a top-k of the whole batch: a strided sample (stride
    coprime with n, so every latent is sampled) gives a lower bound that about 1.5kB
    entries pass; the exact order statistic is then selected among those candidates
    (among all entries if fewer than kB pass). The result does not depend on the sample."""
    flat = pre.detach().reshape(-1)
    N = flat.numel()
    kk = min(k * pre.shape[0], N)
    if flat.device.type != "cpu":
        return max(float(flat.kthvalue(N - kk + 1).values), 0.0)
    a = flat.numpy()
    if N >= 1 << 16:
        s = next((s for s in _SAMPLE_STRIDES if math.gcd(s, pre.shape[-1]) == 1), 1)
        sample = a[::s]
        m = min(sample.size, 3 * kk // (2 * s) + 1)
        lower = np.partition(sample, sample.size - m)[sample.size - m]
        cand = np.compress(a >= lower, a)
        if cand.size >= kk:
            return max(float(np.partition(cand, cand.size - kk)[cand.size - kk]), 0.0)
    return max(float(np.partition(a, N - kk)[N - kk]), 0.0)


def batch_topk(pre: torch.Tensor, k: int, threshold: float | None = None) -> torch.Tensor:
    """BatchTopK of a (B, n) pre-activation: keep the k * B largest entries of relu(pre), zero elsewhere.

    One fused elementwise op (and one in backward): entries >= the (k * B)-th largest
    value, if positive. Entries tied with that value are all kept (measure zero for real data).
    `threshold` is batch_topk_threshold(pre, k) if the caller has it already."""
    th = max(batch_topk_threshold(pre, k) if threshold is None else threshold, 0.0)  # never below 0 (ReLU)
    if th > 0:  # F.threshold keeps x > th; the largest float below th keeps x >= th
        th = float(torch.nextafter(torch.tensor(th, dtype=pre.dtype), torch.tensor(-math.inf, dtype=pre.dtype)))
    return torch.nn.functional.threshold(pre, th, 0.0)


def normalize_decoder(D) -> None:
    """Fix each latent's joint decoder norm sum_m ||W_dec,k^m|| = 1 (keeps per-model ratios)."""
    with torch.no_grad():
        D.W_dec.div_(D.dec_norms().sum(0).clamp_min(1e-8)[None, :, None])


def aux_loss(pre: torch.Tensor, e: torch.Tensor, W_dec: torch.Tensor, dead: torch.Tensor, aux_k: int) -> torch.Tensor:
    """AuxK: the residual e (B, M*d) reconstructed from the top-`aux_k` dead latents of each token
    (by relu(pre)), relative to ||e||^2. Only the dead latents' columns and decoder rows are touched."""
    idx = dead.nonzero().squeeze(1)
    post = torch.relu(pre.index_select(1, idx))
    if aux_k < len(idx):
        vals, top = post.topk(aux_k, dim=-1, sorted=False)
        post = torch.zeros_like(post).scatter(-1, top, vals)
    e_hat = post @ W_dec.index_select(0, idx)
    return F.mse_loss(e_hat, e, reduction="sum") / e.pow(2).sum().clamp_min(1e-8)


@torch.no_grad()
def calibrate_readout(D, x: torch.Tensor) -> None:
    """Per-model readout thresholds: model m alone fires as many latents per token as the joint code."""
    joint_l0 = float((D.encode(x) > 0).sum(-1).float().mean())
    target = max(1, round(joint_l0 * len(x)))
    ths = []
    for m in range(D.M):
        pre = D.pre_model(m, x[:, m]).flatten().cpu().numpy()
        r = max(0, pre.size - min(target + 1, pre.size))  # the (target + 1)-th largest entry
        ths.append(max(0.0, float(np.partition(pre, r)[r])))
    D.thresholds = ths
    D.cfg["joint_l0_calibration"] = joint_l0


class AuxKTraining(Training):
    """What the TopK family shares: the decoder at joint norm 1 per latent, AuxK on dead latents."""

    def __init__(self, D, cfg, steps):
        super().__init__(D, cfg, steps)
        normalize_decoder(D)

    def loss(self, step, pre, f, xs, xhat, W_dec, dead):
        aux = torch.zeros(())
        if int(dead.sum()) and self.cfg.aux_coeff > 0:
            aux = aux_loss(pre, (xs - xhat).detach(), W_dec, dead, self.cfg.aux_k)
        return self.cfg.aux_coeff * aux, aux

    def after_step(self):
        normalize_decoder(self.D)


class BatchTopKTraining(AuxKTraining):
    def __init__(self, D, cfg, steps):
        super().__init__(D, cfg, steps)
        self.thr_sum, self.thr_n = 0.0, 0

    def activate(self, step, pre):
        kth = batch_topk_threshold(pre, self.D.k)
        f = batch_topk(pre, self.D.k, threshold=kth)
        # Global inference threshold: mean over the second half of training of the batch's smallest kept activation.
        if step >= self.steps // 2:
            if kth <= 0:  # fewer than k*B positive entries: all positive ones are kept
                kept = f.detach()[f.detach() > 0]
                kth = float(kept.min()) if kept.numel() else 0.0
            if kth > 0:
                self.thr_sum += kth
                self.thr_n += 1
        return f

    def finish(self, calib_rows):
        self.D.threshold = self.thr_sum / max(1, self.thr_n)
        calibrate_readout(self.D, calib_rows())


class BatchTopK(Architecture):
    name = "batchtopk"
    saelens_name = "jumprelu"  # pre * (pre > threshold) with one threshold for all latents: the same function
    cfg_keys = ("k",)
    training = BatchTopKTraining

    def setup(self, D):
        if not D.k:
            raise ValueError("arch batchtopk needs k")

    def activate(self, D, pre, train=False, threshold=None):
        if train:
            return batch_topk(pre, D.k)
        th = D.threshold if threshold is None else threshold
        if th is None:
            raise ValueError("batchtopk dictionary has no inference threshold yet")
        return pre * (pre > th)

    def readout_threshold(self, D, m):
        if D.thresholds is None:
            raise ValueError("batchtopk dictionary has no per-model readout thresholds")
        return D.thresholds[m]

    def saelens_tensors(self, D):
        return {"threshold": torch.full((D.n,), float(D.threshold))}


ARCHITECTURE = BatchTopK()
