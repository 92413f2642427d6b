"""Parquet activation shards: the schema, the writer, and a paired streaming reader.

One row per token: seq_id int32, pos int32, token_id int32, act fixed_size_list<float16|float32, d_model>.
File metadata (keys prefixed `featdrift.`): model, layer, hook, d_model, dtype,
tokenizer_hash, probe_hash, shard, n_shards, n_rows.

The reader streams row groups straight from Arrow buffers into torch (no Python
objects per row); memory holds one row group per model plus what the caller keeps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

PREFIX = "featdrift."
HOOK = "resid_post"  # residual stream after block L
REQUIRED = ("model", "layer", "hook", "d_model", "dtype", "tokenizer_hash", "probe_hash", "n_rows")
ARROW_DTYPES = {"float16": pa.float16(), "float32": pa.float32()}


class ShardError(ValueError):
    """A shard that is missing, truncated, not Parquet, or inconsistent with its siblings."""


def act_schema(d_model: int, dtype: str, meta: dict) -> pa.Schema:
    return pa.schema(
        [("seq_id", pa.int32()), ("pos", pa.int32()), ("token_id", pa.int32()),
         ("act", pa.list_(ARROW_DTYPES[dtype], d_model))],
        metadata={PREFIX + k: str(v) for k, v in meta.items()},
    )


def act_batch(schema: pa.Schema, seq_id: np.ndarray, pos: np.ndarray, token_id: np.ndarray, act: np.ndarray) -> pa.RecordBatch:
    """A record batch from flat numpy arrays; `act` (n, d) is wrapped without a per-row copy.

    Refuses NaN or inf activations (float16 overflows to inf above 65504: use dtype float32)."""
    d = act.shape[1]
    if not np.isfinite(act).all():
        meta = _decode_meta(schema.metadata)
        raise ShardError(f"activations of model {meta.get('model')!r} at layer {meta.get('layer')} (shard "
                         f"{meta.get('shard')}) hold {int((~np.isfinite(act)).sum())} NaN or inf values "
                         f"(activations.dtype {meta.get('dtype')}; float16 overflows above 65504)")
    values = pa.array(np.ascontiguousarray(act).reshape(-1), type=schema.field("act").type.value_type)
    return pa.RecordBatch.from_arrays(
        [pa.array(seq_id, pa.int32()), pa.array(pos, pa.int32()), pa.array(token_id, pa.int32()),
         pa.FixedSizeListArray.from_arrays(values, d)], schema=schema)


def shard_writer(path, schema: pa.Schema) -> pq.ParquetWriter:
    """The Parquet writer of activation shards. Dictionary encoding and min/max statistics
    only for the integer columns: on the float `act` values they cost write time and help no reader.
    Page checksums (CRC32), verified by the reader, make corrupted values an error rather than data."""
    ints = [f.name for f in schema if f.name != "act"]
    return pq.ParquetWriter(path, schema, use_dictionary=ints, write_statistics=ints, write_page_checksum=True)


def _decode_meta(raw) -> dict:
    return {k.decode()[len(PREFIX):]: v.decode() for k, v in (raw or {}).items() if k.decode().startswith(PREFIX)}


def open_shard(path) -> tuple[pq.ParquetFile, dict]:
    """(ParquetFile, metadata) or ShardError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"{path}: activation shard is missing")
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise ShardError(f"{path}: truncated or corrupt activation shard ({str(e).splitlines()[0]}); "
                         f"delete it and rerun the activations rule") from None
    meta = _decode_meta(pf.schema_arrow.metadata)
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ShardError(f"{path}: not a featdrift activation shard (metadata lacks {', '.join(missing)})")
    if pf.metadata.num_rows != int(meta["n_rows"]):
        raise ShardError(f"{path}: truncated activation shard ({pf.metadata.num_rows} rows, metadata says {meta['n_rows']})")
    return pf, meta


def shard_meta(path) -> dict:
    return open_shard(path)[1]


def acts_to_torch(col: pa.ChunkedArray | pa.Array, out: torch.Tensor | None = None) -> torch.Tensor:
    """A fixed_size_list column as a float32 (n, d) tensor (one conversion copy, no Python rows)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    d = arr.type.list_size
    flat = arr.flatten().to_numpy(zero_copy_only=True).reshape(-1, d)
    with warnings.catch_warnings():  # read-only Arrow buffer: we only read from it
        warnings.simplefilter("ignore", UserWarning)
        src = torch.from_numpy(flat)
    if out is None:
        return src.float()
    out.copy_(src)
    return out


class ActivationStore:
    """Paired shards of M models at one layer: `shards[m][i]` is shard i of model m.

    Construction checks every file (fails naming the file) and that models agree on
    the probe set, tokenizer, layer, d_model, and row-group layout. `read(unit)`
    returns (seq_id, pos, x) with x of shape (rows, M, d) float32 for one row group
    of one shard across all models; the (seq_id, pos) of every model are checked equal.
    """

    def __init__(self, shards: list[list[str | Path]], models: list[str] | None = None):
        if not shards or not shards[0]:
            raise ShardError("no activation shards given")
        n = len(shards[0])
        if any(len(s) != n for s in shards):
            raise ShardError(f"models have different shard counts: {[len(s) for s in shards]}")
        self.paths = [[Path(p) for p in s] for s in shards]
        self.metas = [[open_shard(p)[1] for p in s] for s in self.paths]
        self.models = models or [m[0]["model"] for m in self.metas]
        ref, ref_path = self.metas[0][0], self.paths[0][0]
        for m, (metas, paths) in enumerate(zip(self.metas, self.paths)):
            for meta, p in zip(metas, paths):
                if meta["tokenizer_hash"] != ref["tokenizer_hash"]:
                    raise ShardError(f"tokenizer of model {meta['model']!r} ({p}) differs from model "
                                     f"{ref['model']!r} ({ref_path}): rows do not pair across models")
                for key in ("probe_hash", "layer", "d_model", "hook"):
                    if meta[key] != ref[key]:
                        raise ShardError(f"{p}: {key} {meta[key]!r} differs from {ref_path}'s {ref[key]!r}")
        self.d_model = int(ref["d_model"])
        self.layer = int(ref["layer"])
        self.units = []  # (shard, row group)
        for i in range(n):
            files = [pq.ParquetFile(self.paths[m][i]) for m in range(len(self.paths))]
            rgs = [[f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] for f in files]
            for m, r in enumerate(rgs[1:], 1):
                if r != rgs[0]:
                    raise ShardError(f"{self.paths[m][i]}: row groups {r[:4]}... do not pair with "
                                     f"{self.paths[0][i]} ({rgs[0][:4]}...)")
            self.units += [(i, g, rows) for g, rows in enumerate(rgs[0])]
        self.n_rows = sum(u[2] for u in self.units)
        self._open: dict = {}

    @property
    def n_models(self) -> int:
        return len(self.paths)

    def _file(self, m: int, i: int) -> pq.ParquetFile:
        # Keep at most one open file per model: memory stays bounded whatever the shard count.
        key = (m, i)
        f = self._open.get(m)
        if f is None or f[0] != key:
            # Page CRCs, where the writer stored them, catch corruption that leaves the file readable.
            f = (key, pq.ParquetFile(self.paths[m][i], memory_map=False, page_checksum_verification=True))
            self._open[m] = f
        return f[1]

    def read(self, unit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, g, rows = unit
        x = torch.empty(rows, self.n_models, self.d_model)
        seq0 = pos0 = None
        for m in range(self.n_models):
            path = self.paths[m][i]
            try:
                t = self._file(m, i).read_row_group(g, columns=["seq_id", "pos", "act"])
            except (OSError, pa.ArrowInvalid) as e:
                raise ShardError(f"{path}: cannot read row group {g} ({str(e).splitlines()[0]})") from None
            seq = t.column("seq_id").to_numpy()
            pos = t.column("pos").to_numpy()
            if m == 0:
                seq0, pos0 = seq, pos
            elif not (np.array_equal(seq, seq0) and np.array_equal(pos, pos0)):
                raise ShardError(f"{path}: rows of row group {g} do not pair with {self.paths[0][i]} by (seq_id, pos)")
            acts_to_torch(t.column("act"), out=x[:, m, :])
            if not torch.isfinite(x[:, m, :]).all():
                bad = int((~torch.isfinite(x[:, m, :])).sum())
                raise ShardError(f"{path}: row group {g} holds {bad} NaN or inf activation values")
        return torch.from_numpy(seq0.astype(np.int64)), torch.from_numpy(pos0.astype(np.int64)), x

    def __iter__(self):
        for u in self.units:
            yield self.read(u)
