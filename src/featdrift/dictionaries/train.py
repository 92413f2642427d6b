"""Training a dictionary (SAE or crosscoder) by streaming paired Parquet shards.

Deterministic for a fixed seed and thread count: the row-group order of each pass
and the shuffle inside a bounded buffer come from one seeded torch.Generator.
Memory: one shuffle buffer (`buffer_rows` x M x d floats) plus one row group per model.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..activations.store import ActivationStore
from ..determinism import set_determinism
from .model import Dictionary, batch_topk, batch_topk_threshold

log = logging.getLogger(__name__)


def is_train_row(seq_id: torch.Tensor, holdout_every: int) -> torch.Tensor:
    """Every `holdout_every`-th probe sequence is held out for evaluation."""
    return seq_id % holdout_every != 0


def take_rows(store: ActivationStore, n: int, holdout_every: int, train: bool = True) -> torch.Tensor:
    """The first n train (or held-out) rows in store order, (n', M, d) with n' <= n."""
    out, have = [], 0
    for sid, _pos, x in store:
        keep = is_train_row(sid, holdout_every) if train else ~is_train_row(sid, holdout_every)
        x = x[keep]
        out.append(x[: n - have])
        have += len(out[-1])
        if have >= n:
            break
    return torch.cat(out)


def row_batches(store: ActivationStore, batch_size: int, buffer_rows: int, gen: torch.Generator, holdout_every: int):
    """Endless (batch_size, M, d) training batches: row groups in a fresh random order each pass,
    rows shuffled inside a buffer of `buffer_rows`."""
    buf, keep, n = [], [], 0
    while True:
        for u in torch.randperm(len(store.units), generator=gen).tolist():
            sid, _pos, x = store.read(store.units[u])
            k = is_train_row(sid, holdout_every)
            buf.append(x)
            keep.append(k)
            n += int(k.sum())
            if n < max(buffer_rows, batch_size):
                continue
            # One gather per batch picks the kept rows in a random order (no copy of the filtered buffer).
            allx = torch.cat(buf) if len(buf) > 1 else buf[0]
            rows = torch.cat(keep).nonzero().squeeze(1)
            rows = rows[torch.randperm(len(rows), generator=gen)]
            full = len(rows) // batch_size * batch_size
            for b in range(0, full, batch_size):
                yield allx.index_select(0, rows[b : b + batch_size])
            rest = allx.index_select(0, rows[full:])
            buf, keep, n = [rest], [torch.ones(len(rest), dtype=torch.bool)], len(rest)
            del allx


def lr_factor(step: int, steps: int, warmup_frac: float = 0.02, decay_frac: float = 0.2) -> float:
    warm = max(1, int(steps * warmup_frac))
    if step < warm:
        return (step + 1) / warm
    start = int(steps * (1 - decay_frac))
    return 1.0 if step < start else max(0.0, (steps - step) / max(1, steps - start))


def init_dictionary(D: Dictionary, sample: torch.Tensor, gen: torch.Generator) -> None:
    """Decoder directions random with sum_m ||W_dec,k^m|| = 1, encoder = decoder^T, b_dec = data mean."""
    with torch.no_grad():
        W = torch.randn(D.M, D.n, D.d, generator=gen)
        W = W / W.norm(dim=-1, keepdim=True) / D.M
        D.W_dec.copy_(W)
        D.W_enc.copy_(W.transpose(1, 2))
        D.b_dec.copy_(D.scale(sample).mean(0))
        D.b_enc.zero_()


def normalize_decoder(D: Dictionary) -> None:
    """BatchTopK: fix each latent's joint decoder norm sum_m ||W_dec,k^m|| = 1 (keeps per-model ratios)."""
    with torch.no_grad():
        D.W_dec.div_(D.dec_norms().sum(0).clamp_min(1e-8)[None, :, None])


def adam(D: Dictionary, lr: float) -> torch.optim.Adam:
    """Adam; the fused CPU kernel where this torch has it (one pass over each parameter)."""
    try:
        return torch.optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999))


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


def train_dictionary(store: ActivationStore, models: list[str], cfg: dict, seed: int, threads: int = 1,
                     meta: dict | None = None) -> tuple[Dictionary, list[dict]]:
    """(trained Dictionary with thresholds calibrated, training curve rows)."""
    set_determinism(threads, seed)
    gen = torch.Generator().manual_seed(seed)
    M, d, n = store.n_models, store.d_model, cfg["n_latents"]
    hold = cfg["holdout_every"]
    sample = take_rows(store, cfg["scale_rows"], hold)
    scales = math.sqrt(d) / sample.norm(dim=-1).mean(0)
    arch = cfg["arch"]
    D = Dictionary(M, d, n, arch, cfg["k"] if arch == "batchtopk" else None, scales,
                   cfg={"models": list(models), **(meta or {})})
    if arch == "relu":
        D.cfg["l1_coeff"] = cfg["l1_coeff"]
    init_dictionary(D, sample, gen)
    if arch == "batchtopk":
        normalize_decoder(D)
    opt = adam(D, cfg["lr"])
    bs = cfg["batch_size"]
    steps = max(1, cfg["tokens"] // bs)
    batches = row_batches(store, bs, cfg["buffer_rows"], gen, hold)
    since_fired = torch.zeros(n)
    thr_sum, thr_n = 0.0, 0
    curve = []
    # The step as plain 2-D matmuls of the (B, M*d) batch: encoder (M*d, n) and decoder (n, M*d)
    # (a view of W_dec for M = 1, a copy of W_dec's n*M*d entries otherwise); the input needs no gradient.
    W_enc, b_enc, b_dec = D.W_enc.view(M * d, n), D.b_enc, D.b_dec.view(M * d)
    for step in range(steps):
        xs = next(batches).reshape(bs, M * d) * D.scales.repeat_interleave(d)
        fac = lr_factor(step, steps)
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * fac
        W_dec = D.W_dec.transpose(0, 1).reshape(n, M * d)
        pre = torch.addmm(b_enc, xs, W_enc)
        aux = torch.zeros(())
        if arch == "relu":
            f = torch.relu(pre)
            xhat = torch.addmm(b_dec, f, W_dec)
            lam = cfg["l1_coeff"] * min(1.0, (step + 1) / max(1, int(steps * cfg["l1_warmup"])))
            sparsity = (f @ D.dec_norms().sum(0)).mean()
            rec = F.mse_loss(xhat, xs, reduction="sum") / bs
            loss = rec + lam * sparsity
        else:
            kth = batch_topk_threshold(pre, D.k)
            f = batch_topk(pre, D.k, threshold=kth)
            xhat = torch.addmm(b_dec, f, W_dec)
            rec = F.mse_loss(xhat, xs, reduction="sum") / bs
            dead = since_fired >= cfg["dead_tokens"]
            n_dead = int(dead.sum())
            if n_dead and cfg["aux_coeff"] > 0:
                aux = aux_loss(pre, (xs - xhat).detach(), W_dec, dead, cfg["aux_k"])
            loss = rec + cfg["aux_coeff"] * aux
            # Global inference threshold: mean over the second half of training of the batch's smallest kept activation.
            if step >= steps // 2:
                if kth <= 0:  # fewer than k*B positive entries: all positive ones are kept
                    kept = f.detach()[f.detach() > 0]
                    kth = float(kept.min()) if kept.numel() else 0.0
                if kth > 0:
                    thr_sum += kth
                    thr_n += 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)
        opt.step()
        if arch == "batchtopk":
            normalize_decoder(D)
        with torch.no_grad():
            since_fired += bs
            since_fired[f.detach().sum(0) > 0] = 0  # f >= 0: a positive column sum means the latent fired
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            with torch.no_grad():
                var = (xs - xs.mean(0)).pow(2).sum(-1).mean()
                row = {"step": step, "tokens": (step + 1) * bs, "loss": float(loss), "fvu": float(rec / var),
                       "l0": float((f > 0).sum(-1).float().mean()), "aux": float(aux),
                       "dead_frac": float((since_fired >= cfg["dead_tokens"]).float().mean()), "lr": cfg["lr"] * fac}
            curve.append(row)
            if step % max(1, steps // 10) == 0 or step == steps - 1:
                log.info("step %d/%d loss %.4f fvu %.4f l0 %.1f dead %.3f", step, steps, row["loss"], row["fvu"],
                         row["l0"], row["dead_frac"])
    D.eval()
    if arch == "batchtopk":
        D.threshold = thr_sum / max(1, thr_n)
        calibrate_readout(D, take_rows(store, cfg["calib_rows"], hold))
    return D, curve


@torch.no_grad()
def calibrate_readout(D: Dictionary, x: torch.Tensor) -> None:
    """Per-model readout thresholds: model m alone fires as many latents per token as the joint code."""
    joint_l0 = float((D.encode(x) > 0).sum(-1).float().mean())
    target = max(1, round(joint_l0 * len(x)))
    ths = []
    for m in range(D.M):
        pre = D.pre_model(m, x[:, m]).flatten().numpy()
        r = max(0, pre.size - min(target + 1, pre.size))  # the (target + 1)-th largest entry
        ths.append(max(0.0, float(np.partition(pre, r)[r])))
    D.thresholds = ths
    D.cfg["joint_l0_calibration"] = joint_l0
