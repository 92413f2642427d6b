"""Training a dictionary (SAE or crosscoder) by streaming paired Parquet shards.

Deterministic for a fixed seed and thread count: the row-group order of each pass
and the shuffle inside a bounded buffer come from one seeded torch.Generator.
Memory: one shuffle buffer (`buffer_rows` x M x d floats) plus one row group per model.
The loop is the same for every architecture; what differs (activation, extra loss,
decoder normalisation, thresholds after training) is the architecture's (arch/).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ..activations.store import ActivationStore
from ..determinism import set_determinism
from .arch import get
from .model import Dictionary
from .settings import DictionaryConfig
from .split import held_out

log = logging.getLogger(__name__)


def take_rows(store: ActivationStore, n: int, holdout_every: int, train: bool = True) -> torch.Tensor:
    """The first n train (or held-out) rows in store order, (n', M, d) with n' <= n."""
    out, have = [], 0
    for sid, _pos, x in store:
        keep = ~held_out(sid, holdout_every) if train else held_out(sid, holdout_every)
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
            k = ~held_out(sid, holdout_every)
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


def adam(D: Dictionary, lr: float) -> torch.optim.Adam:
    """Adam; the fused CPU kernel where this torch has it (one pass over each parameter)."""
    try:
        return torch.optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999))


def train_dictionary(store: ActivationStore, models: list[str], cfg: DictionaryConfig | Mapping, seed: int,
                     threads: int = 1, meta: dict | None = None, device: str = "cpu") -> tuple[Dictionary, list[dict]]:
    """(trained Dictionary on the CPU with its inference parameters set, training curve rows).

    `cfg` is a DictionaryConfig (a `dictionaries` config section is converted, strictly). On another
    `device` the rows, the dictionary and the step go there; initialisation and the shuffle stay on
    the CPU's seeded generator, so a device changes kernels, not the data order."""
    cfg = DictionaryConfig.of(cfg)
    set_determinism(threads, seed)
    gen = torch.Generator().manual_seed(seed)
    M, d, n = store.n_models, store.d_model, cfg.n_latents
    hold = cfg.holdout_every
    sample = take_rows(store, cfg.scale_rows, hold)
    scales = math.sqrt(d) / sample.norm(dim=-1).mean(0)
    arch = get(cfg.arch)
    params = {key: getattr(cfg, key) for key in arch.cfg_keys}
    D = Dictionary(M, d, n, cfg.arch, params.get("k"), scales, cfg={"models": list(models), **(meta or {}), **params})
    init_dictionary(D, sample, gen)
    dev = torch.device(device)
    D.to(dev)
    if dev.type == "cuda":  # float32 matmuls on TF32 tensor cores (~7x FP32 on A100/H100); CPU numerics unchanged
        torch.backends.cuda.matmul.allow_tf32 = True
    bs = cfg.batch_size
    steps = max(1, cfg.tokens // bs)
    run = arch.training(D, cfg, steps)
    opt = adam(D, cfg.lr)
    batches = row_batches(store, bs, cfg.buffer_rows, gen, hold)
    since_fired = torch.zeros(n, device=dev)
    curve = []
    # The step as plain 2-D matmuls of the (B, M*d) batch: encoder (M*d, n) and decoder (n, M*d)
    # (a view of W_dec for M = 1, a copy of W_dec's n*M*d entries otherwise); the input needs no gradient.
    W_enc, b_enc, b_dec = D.W_enc.view(M * d, n), D.b_enc, D.b_dec.view(M * d)
    for step in range(steps):
        xs = next(batches).to(dev).reshape(bs, M * d) * D.scales.repeat_interleave(d)
        fac = lr_factor(step, steps)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * fac
        W_dec = D.W_dec.transpose(0, 1).reshape(n, M * d)
        dead = since_fired >= cfg.dead_tokens
        pre = run.encode(step, xs, W_enc, b_enc, dead)
        f = run.activate(step, pre)
        xhat = run.decode(step, f, W_dec, b_dec)
        rec = F.mse_loss(xhat, xs, reduction="sum") / bs
        extra, aux = run.loss(step, pre, f, xs, xhat, W_dec, dead)
        loss = rec + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)
        opt.step()
        run.after_step()
        with torch.no_grad():
            since_fired += bs
            since_fired[run.fired(f)] = 0
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            with torch.no_grad():
                var = (xs - xs.mean(0)).pow(2).sum(-1).mean()
                row = {"step": step, "tokens": (step + 1) * bs, "loss": float(loss), "fvu": float(rec / var),
                       "l0": run.l0(f), "aux": float(aux),
                       "dead_frac": float((since_fired >= cfg.dead_tokens).float().mean()), "lr": cfg.lr * fac}
            curve.append(row)
            if step % max(1, steps // 10) == 0 or step == steps - 1:
                log.info("step %d/%d loss %.4f fvu %.4f l0 %.1f dead %.3f", step, steps, row["loss"], row["fvu"],
                         row["l0"], row["dead_frac"])
    D.eval()
    run.finish(lambda: take_rows(store, cfg.calib_rows, hold).to(dev))
    return D.cpu(), curve
