"""Training a dictionary (SAE or crosscoder) by streaming paired Parquet shards.

Deterministic for a fixed seed and thread count: the row-group order of each pass
and the shuffle inside a bounded buffer come from one seeded torch.Generator.
Memory: one shuffle buffer (`buffer_rows` x M x d floats) plus one row group per model.
"""

from __future__ import annotations

import logging
import math

import torch

from ..activations.store import ActivationStore
from ..determinism import set_determinism
from .model import Dictionary, batch_topk

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
    buf, n = [], 0
    while True:
        for u in torch.randperm(len(store.units), generator=gen).tolist():
            sid, _pos, x = store.read(store.units[u])
            x = x[is_train_row(sid, holdout_every)]
            buf.append(x)
            n += len(x)
            if n < max(buffer_rows, batch_size):
                continue
            allx = torch.cat(buf)
            allx = allx[torch.randperm(len(allx), generator=gen)]
            full = len(allx) // batch_size * batch_size
            for b in range(0, full, batch_size):
                yield allx[b : b + batch_size]
            buf, n = [allx[full:].clone()], len(allx) - full
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
    opt = torch.optim.Adam(D.parameters(), lr=cfg["lr"], betas=(0.9, 0.999))
    bs = cfg["batch_size"]
    steps = max(1, cfg["tokens"] // bs)
    batches = row_batches(store, bs, cfg["buffer_rows"], gen, hold)
    since_fired = torch.zeros(n)
    thr_sum, thr_n = 0.0, 0
    curve = []
    for step in range(steps):
        xs = D.scale(next(batches))
        fac = lr_factor(step, steps)
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * fac
        pre = D.pre(xs)
        aux = torch.zeros(())
        if arch == "relu":
            f = torch.relu(pre)
            xhat = D.decode_scaled(f)
            lam = cfg["l1_coeff"] * min(1.0, (step + 1) / max(1, int(steps * cfg["l1_warmup"])))
            sparsity = (f * D.dec_norms().sum(0)).sum(-1).mean()
            rec = (xs - xhat).pow(2).sum((-1, -2)).mean()
            loss = rec + lam * sparsity
        else:
            post = torch.relu(pre)
            f, kept_vals, kept_idx = batch_topk(post, D.k, return_kept=True)
            xhat = D.decode_scaled(f)
            rec = (xs - xhat).pow(2).sum((-1, -2)).mean()
            dead = since_fired >= cfg["dead_tokens"]
            n_dead = int(dead.sum())
            if n_dead and cfg["aux_coeff"] > 0:
                e = (xs - xhat).detach()
                masked = post.masked_fill(~dead, 0.0)
                kk = min(cfg["aux_k"], n_dead)
                vals, idx = masked.topk(kk, dim=-1)
                f_aux = torch.zeros_like(post).scatter(-1, idx, vals)
                e_hat = torch.einsum("bn,mnd->bmd", f_aux, D.W_dec)
                aux = (e - e_hat).pow(2).sum((-1, -2)).mean() / e.pow(2).sum((-1, -2)).mean().clamp_min(1e-8)
            loss = rec + cfg["aux_coeff"] * aux
            # Global inference threshold: mean over the second half of training of the batch's smallest kept activation.
            if step >= steps // 2:
                kept = kept_vals.detach()
                kept = kept[kept > 0] if bool((kept <= 0).any()) else kept
                if kept.numel():
                    thr_sum += float(kept.min())
                    thr_n += 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)
        opt.step()
        if arch == "batchtopk":
            normalize_decoder(D)
        with torch.no_grad():
            since_fired += bs
            if arch == "batchtopk":
                since_fired[kept_idx[kept_vals > 0] % n] = 0
            else:
                since_fired[(f > 0).any(0)] = 0
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            with torch.no_grad():
                var = (xs - xs.mean(0)).pow(2).sum((-1, -2)).mean()
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
        pre = D.pre_model(m, x[:, m]).flatten()
        kth = pre.topk(min(target + 1, pre.numel())).values[-1]
        ths.append(max(0.0, float(kth)))
    D.thresholds = ths
    D.cfg["joint_l0_calibration"] = joint_l0
