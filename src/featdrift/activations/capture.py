"""Capturing residual-stream activations of one model on one probe shard into Parquet.

A forward hook on each requested decoder block (models.hooks) keeps the block's output
(the residual stream after block L); the forward stops after the deepest requested
block, so capture costs no more than the part of the model it needs.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pyarrow.parquet as pq
import torch

from ..determinism import set_determinism
from ..io import atomic_path
from ..models.hooks import block_hooks
from ..models.load import load_model
from ..settings import ActivationSettings
from .probe import read_probe, shard_range, tokenizer_hash
from .store import HOOK, act_batch, act_schema, shard_writer

log = logging.getLogger(__name__)
TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def run_capture(model, ids: torch.Tensor, layers: list[int], stop_early: bool = True) -> dict[int, torch.Tensor]:
    """{layer: (B, T, d) output of block layer} for one forward; with stop_early the forward
    ends after the deepest requested block."""
    store: dict[int, torch.Tensor] = {}

    def keep(L):
        def fn(h):
            store[L] = h.detach()
        return fn

    stop = max(layers) if stop_early else None
    with block_hooks(model, {L: keep(L) for L in layers}, stop_after=stop, name="activations.layers"), \
            torch.inference_mode():
        model(input_ids=ids, use_cache=False)
    return store


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and lengths. Causal attention never lets a real token see the padding
    after it, so no attention mask is needed and positions start at 0 as in unpadded text."""
    lengths = torch.tensor([len(s) for s in seqs])
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
    return ids, lengths


def capture_shard(model_name: str, model_path: str, probe_path: str, layers: list[int], shard: int,
                  cfg: ActivationSettings | dict, out_paths: dict[int, str], threads: int = 1,
                  trust_remote_code: bool = False) -> dict:
    """Write `out_paths[L]` (one Parquet file per layer) for one shard; return a summary.

    Fails if the model's tokenizer differs from the one that tokenized the probe set,
    naming both models: rows would not pair across models.
    """
    cfg = ActivationSettings.of(cfg)
    set_determinism(threads)
    probe, pmeta = read_probe(probe_path)
    model, tok = load_model(model_path, trust_remote_code=trust_remote_code)
    th = tokenizer_hash(tok)
    if th != pmeta["tokenizer_hash"]:
        raise ValueError(f"tokenizer of model {model_name!r} ({model_path}, hash {th[:12]}) differs from the tokenizer "
                         f"of model {pmeta.get('tokenizer_model', 'base')!r} that made the probe set "
                         f"({probe_path}, hash {pmeta['tokenizer_hash'][:12]}): activations would not pair")
    model.to(cfg.device)
    start, stop = shard_range(probe.num_rows, shard, cfg.shards)
    part = probe.slice(start, stop - start)
    seq_ids = part.column("seq_id").to_numpy()
    token_ids = part.column("token_ids").to_pylist()
    d = model.config.hidden_size
    dtype = cfg.dtype
    n_rows = sum(len(t) for t in token_ids)
    meta = {"model": model_name, "hook": HOOK, "d_model": d, "dtype": dtype, "tokenizer_hash": th,
            "probe_hash": pmeta["probe_hash"], "shard": shard, "n_shards": cfg.shards, "n_rows": n_rows}
    write_shards(model, tok.pad_token_id, seq_ids, token_ids, layers, meta, cfg.batch_size, out_paths)
    log.info("model %s shard %d: %d sequences, %d tokens, layers %s", model_name, shard, len(token_ids), n_rows, layers)
    return {"sequences": len(token_ids), "tokens": n_rows, "layers": layers}


def length_chunks(lengths: list[int], pass_cost: int = 128) -> list[list[int]]:
    """The sequences of one batch grouped for forward passes, to compute less padding.

    Sorted by length (longest first), cut where the padded token slots saved outweigh one
    more forward pass (`pass_cost` token slots); a batch of equal lengths stays one pass.
    Depends on the lengths alone, so every model of a probe set gets the same passes."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    sl = [lengths[i] for i in order]
    n = len(sl)
    best, cut = [0] + [None] * n, [0] * (n + 1)
    for j in range(1, n + 1):  # best grouping of the j longest: its last pass is sl[i:j], padded to sl[i]
        for i in range(j):
            c = best[i] + (j - i) * sl[i] + pass_cost
            if best[j] is None or c < best[j]:
                best[j], cut[j] = c, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[cut[j] : j])
        j = cut[j]
    return chunks[::-1]


def write_shards(model, pad_id: int, seq_ids, token_ids: list[list[int]], layers: list[int], meta: dict,
                 batch_size: int, out_paths: dict[int, str], stop_early: bool = True) -> None:
    """Forward the sequences in batches and write one Parquet file per layer (one row group per batch)."""
    d, dtype = int(meta["d_model"]), meta["dtype"]
    schemas = {L: act_schema(d, dtype, {**meta, "layer": L}) for L in layers}
    with contextlib.ExitStack() as stack:
        tmps = {L: stack.enter_context(atomic_path(out_paths[L])) for L in layers}
        writers = {L: stack.enter_context(shard_writer(tmps[L], schemas[L])) for L in layers}
        for b in range(0, len(token_ids), batch_size):
            seqs = token_ids[b : b + batch_size]
            lengths = np.array([len(s) for s in seqs])
            acts = batch_acts(model, pad_id, seqs, layers, stop_early)
            pos = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
            sid = np.repeat(np.asarray(seq_ids[b : b + batch_size]), lengths).astype(np.int32)
            tid = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs])
            for L in layers:
                x = acts[L].to(TORCH_DTYPES[dtype]).numpy()
                writers[L].write_batch(act_batch(schemas[L], sid, pos, tid, x))


def batch_acts(model, pad_id: int, seqs: list[list[int]], layers: list[int],
               stop_early: bool = True) -> dict[int, torch.Tensor]:
    """{layer: (sum of lengths, d) activations on the CPU} of one batch, its sequences' tokens in order.

    The forward passes group the batch's sequences by length (length_chunks), so that little
    compute goes to padding. Capture and the online source (activations.online) both read rows
    through here, so stored and online activations of the same batch are the same numbers."""
    rows = {L: [None] * len(seqs) for L in layers}
    for chunk in length_chunks([len(s) for s in seqs]):
        ids, lens = pad_batch([seqs[i] for i in chunk], pad_id)
        acts = run_capture(model, ids.to(model.device), layers, stop_early)
        for L in layers:
            a = acts[L].to("cpu")
            for r, i in enumerate(chunk):
                rows[L][i] = a[r, : int(lens[r])]
    return {L: torch.cat(rows[L]) for L in layers}
