"""Dictionary quality: FVU, L0, dead fraction, slice (per-model readout) quality, CE-loss recovered."""

from __future__ import annotations

import torch

from ..activations.capture import pad_batch
from ..activations.probe import read_probe
from ..activations.store import ActivationStore
from ..models.hooks import block_hook
from ..models.load import load_model
from .model import Dictionary
from .split import held_out, held_out_rows


@torch.no_grad()
def reconstruction_metrics(D: Dictionary, store: ActivationStore, holdout_every: int, max_tokens: int) -> dict:
    """Over held-out rows (every holdout_every-th probe sequence), at most max_tokens of them, in store order."""
    M, n = D.M, D.n
    sse, sse_slice = torch.zeros(M, dtype=torch.float64), torch.zeros(M, dtype=torch.float64)
    sx, sxx = torch.zeros(M, D.d, dtype=torch.float64), torch.zeros(M, dtype=torch.float64)
    fired, fired_slice = torch.zeros(n, dtype=torch.bool), torch.zeros(M, n, dtype=torch.bool)
    l0, l0_slice, rows = 0.0, torch.zeros(M, dtype=torch.float64), 0
    for x in held_out_rows(store, holdout_every, max_tokens):
        f = D.encode(x)
        xhat = D.decode(f)
        sse += (x - xhat).double().pow(2).sum((0, 2))
        sx += x.double().sum(0)
        sxx += x.double().pow(2).sum((0, 2))
        fired |= (f > 0).any(0)
        l0 += float((f > 0).sum())
        for m in range(M):
            fm = D.encode_model(m, x[:, m])
            sse_slice[m] += (x[:, m] - D.decode_model(m, fm)).double().pow(2).sum()
            fired_slice[m] |= (fm > 0).any(0)
            l0_slice[m] += float((fm > 0).sum())
        rows += len(x)
    if rows == 0:
        raise ValueError("no held-out activation rows to evaluate on")
    var = sxx - sx.pow(2).sum(-1) / rows
    models = D.cfg.get("models", [str(m) for m in range(M)])
    return {
        "eval_tokens": rows,
        "fvu": float(sse.sum() / var.sum()),
        "l0": l0 / rows,
        "dead_frac": float((~fired).float().mean()),
        "per_model": {
            name: {"fvu": float(sse[m] / var[m]), "slice_fvu": float(sse_slice[m] / var[m]),
                   "slice_l0": float(l0_slice[m] / rows), "slice_dead_frac": float((~fired_slice[m]).float().mean())}
            for m, name in enumerate(models)
        },
    }


def _ce(logits: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[float, int]:
    """Summed next-token cross-entropy over real tokens, and their count."""
    T = ids.shape[1]
    valid = (torch.arange(1, T)[None, :] < lengths[:, None])
    lp = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                           ids[:, 1:].reshape(-1), reduction="none").view(len(ids), T - 1)
    return float(lp[valid].sum()), int(valid.sum())


def _forward(model, ids, layer: int, replace=None, capture: list | None = None):
    """Logits with block `layer`'s output kept into `capture` and/or replaced by replace(h)."""

    def fn(h):
        if capture is not None:
            capture.append(h.detach().clone())
        return None if replace is None else replace(h).to(h.dtype)

    with block_hook(model, layer, fn, name="dictionary layer"), torch.inference_mode():
        return model(input_ids=ids, use_cache=False).logits


@torch.no_grad()
def ce_recovered(D: Dictionary, model_paths: list[str], probe_path: str, layer: int, holdout_every: int,
                 n_sequences: int, batch_size: int = 16, trust_remote_code: bool = False) -> dict:
    """Per model: CE clean, with xhat^m (joint) or the slice reconstruction spliced in at `layer`,
    and with the layer's output zero-ablated; recovered = (CE_zero - CE_splice) / (CE_zero - CE_clean)."""
    probe, _ = read_probe(probe_path)
    sid = torch.from_numpy(probe.column("seq_id").to_numpy().astype("int64"))
    rows = torch.nonzero(held_out(sid, holdout_every)).flatten()[:n_sequences].tolist()
    seqs = [probe.column("token_ids")[r].as_py() for r in rows]
    batches = []
    for b in range(0, len(seqs), batch_size):
        ids, lengths = pad_batch(seqs[b : b + batch_size], 0)
        batches.append((ids, lengths))
    # Pass 1: every model's clean CE and layer activations (the joint code needs all of them).
    acts = [[] for _ in batches]
    clean = []
    for path in model_paths:
        model, _ = load_model(path, trust_remote_code=trust_remote_code)
        D.check_fits(model.config.hidden_size, str(path))
        tot = cnt = 0
        for bi, (ids, lengths) in enumerate(batches):
            cap = []
            s, c = _ce(_forward(model, ids, layer, capture=cap), ids, lengths)
            tot, cnt = tot + s, cnt + c
            acts[bi].append(cap[0])
        clean.append(tot / cnt)
        del model
    # Pass 2: splice joint and slice reconstructions, and zero-ablate, in each model.
    models = D.cfg.get("models", [str(m) for m in range(D.M)])
    out = {}
    for m, path in enumerate(model_paths):
        model, _ = load_model(path, trust_remote_code=trust_remote_code)
        tot = {"joint": 0.0, "slice": 0.0, "zero": 0.0}
        cnt = 0
        for bi, (ids, lengths) in enumerate(batches):
            x = torch.stack(acts[bi], dim=2).float()  # (B, T, M, d)
            B, T = x.shape[:2]
            xhat = D.reconstruct(x.reshape(B * T, D.M, D.d)).view(B, T, D.M, D.d)[:, :, m]
            xs = D.decode_model(m, D.encode_model(m, x[:, :, m]))
            for key, rep in (("joint", lambda h: xhat), ("slice", lambda h: xs), ("zero", torch.zeros_like)):
                s, c = _ce(_forward(model, ids, layer, replace=rep), ids, lengths)
                tot[key] += s
            cnt += c
        ce = {k: v / cnt for k, v in tot.items()}
        gap = ce["zero"] - clean[m]
        out[models[m]] = {
            "ce_clean": clean[m], "ce_spliced": ce["joint"], "ce_spliced_slice": ce["slice"], "ce_zero_ablated": ce["zero"],
            "ce_recovered": (ce["zero"] - ce["joint"]) / gap if gap > 0 else None,
            "ce_recovered_slice": (ce["zero"] - ce["slice"]) / gap if gap > 0 else None,
            "ce_tokens": cnt,
        }
        del model
    return out
