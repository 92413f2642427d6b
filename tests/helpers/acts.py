"""Shared helpers of the activation and dictionary tests: tiny models, probe sets, synthetic shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from featdrift.activations.probe import build_probe, write_probe
from featdrift.activations.store import act_batch, act_schema
from featdrift.io import write_parquet
from featdrift.models.build import tiny_llama
from featdrift.models.tokenizer import char_tokenizer
from featdrift.tasks.registry import draw_unique

import pandas as pd

ARCH = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "max_len": 64}
PROBE = {"n_tokens": 1500, "seq_len": 40, "generic_share": 0.3}
ACTS = {"shards": 2, "dtype": "float16", "batch_size": 8, "device": "cpu"}


def make_model(path: Path, seed: int, tok=None) -> Path:
    torch.manual_seed(seed)
    tok = tok or char_tokenizer(ARCH["max_len"])
    model = tiny_llama(ARCH, tok)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tasks(root: Path) -> dict[str, str]:
    files = {}
    for task in ("arithmetic", "compare"):
        p = root / "data" / task / "train.parquet"
        write_parquet(p, pd.DataFrame(draw_unique(task, 0, 30)))
        files[task] = str(p)
    return files


def make_probe(root: Path, model_path: Path) -> Path:
    tok = char_tokenizer(ARCH["max_len"])
    table, meta = build_probe(make_tasks(root), tok, PROBE, seed=0)
    out = root / "probe.parquet"
    write_probe(out, table, meta)
    return out


def write_synthetic_shards(root: Path, xs: np.ndarray, models: list[str], n_shards: int = 2, rows_per_group: int = 512,
                           seq_len: int = 32) -> list[list[str]]:
    """xs (N, M, d) float32 written as M models' shards at layer 0, rows paired, seq_id = row // seq_len."""
    N, M, d = xs.shape
    seq = (np.arange(N) // seq_len).astype(np.int32)
    pos = (np.arange(N) % seq_len).astype(np.int32)
    out = []
    bounds = np.linspace(0, N, n_shards + 1).astype(int)
    for m, name in enumerate(models):
        paths = []
        for i in range(n_shards):
            a, b = bounds[i], bounds[i + 1]
            meta = {"model": name, "layer": 0, "hook": "resid_post", "d_model": d, "dtype": "float32",
                    "tokenizer_hash": "synthetic", "probe_hash": "synthetic", "shard": i, "n_shards": n_shards,
                    "n_rows": b - a}
            schema = act_schema(d, "float32", meta)
            p = root / "acts" / name / "layer-0" / f"part-{i}.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            with pq.ParquetWriter(p, schema) as w:
                for g in range(a, b, rows_per_group):
                    h = min(b, g + rows_per_group)
                    w.write_batch(act_batch(schema, seq[g:h], pos[g:h], np.zeros(h - g, np.int32), xs[g:h, m]))
            paths.append(str(p))
        out.append(paths)
    return out


def sparse_data(n: int, d: int, n_atoms: int, k: int, n_models: int = 1, seed: int = 0):
    """Tokens made from a known sparse dictionary: k atoms per token with magnitudes in [1, 3].

    Model m has its own unit atoms (the same codes); returns (xs (n, M, d), atoms (M, n_atoms, d)).
    """
    g = np.random.default_rng(seed)
    atoms = g.standard_normal((n_models, n_atoms, d)).astype(np.float32)
    atoms /= np.linalg.norm(atoms, axis=-1, keepdims=True)
    codes = np.zeros((n, n_atoms), np.float32)
    for r in range(n):
        idx = g.choice(n_atoms, size=k, replace=False)
        codes[r, idx] = g.uniform(1.0, 3.0, size=k)
    xs = np.einsum("na,mad->nmd", codes, atoms) + 0.01 * g.standard_normal((n, n_models, d)).astype(np.float32)
    return xs.astype(np.float32), atoms


def matched_fraction(W_dec: torch.Tensor, atoms: np.ndarray, thresh: float = 0.9) -> float:
    """Share of true atoms whose best learned decoder direction has cosine > thresh. W_dec (n, d), atoms (a, d)."""
    W = torch.nn.functional.normalize(W_dec.detach().float(), dim=-1)
    A = torch.nn.functional.normalize(torch.as_tensor(atoms), dim=-1)
    return float(((A @ W.T).max(dim=1).values > thresh).float().mean())
