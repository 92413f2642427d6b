"""The probe set: one deterministic list of token sequences that every model sees.

Task prompts of every task (with their worked answer) plus generic text, tokenized
once with the base tokenizer and stored with the tokenizer's hash, so that rows of
every model's activations pair by (seq_id, pos).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from ..io import write_parquet
from ..settings import ProbeSettings
from ..tasks.build import load_split
from ..tasks import world
from ..tasks.registry import TASKS, rng_for

META_PREFIX = "featdrift."


def tokenizer_hash(tok) -> str:
    """sha256 of what decides token ids: the tokenizer's full JSON (fast) or its vocabulary."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        text = "\n".join(f"{t}\t{i}" for t, i in sorted(tok.get_vocab().items()))
    specials = f"{tok.bos_token_id},{tok.eos_token_id},{tok.pad_token_id}"
    return hashlib.sha256((text + specials).encode()).hexdigest()


def probe_hash(token_ids: list[list[int]]) -> str:
    h = hashlib.sha256()
    for ids in token_ids:
        h.update(np.asarray(ids, dtype=np.int32).tobytes())
        h.update(b"\xff\xff\xff\xff")
    return h.hexdigest()


def task_text(task: str, row: dict) -> str:
    """A task item as the text a model reads: the prompt and its worked or chosen answer."""
    if TASKS[task].kind == "generate" or "prompt" in row:
        return row["prompt"] + (row.get("completion") or "")
    return f"{row['question']} {row['answer']}"


def build_probe(task_files: dict[str, str], tok, cfg: ProbeSettings | dict, seed: int) -> tuple[pa.Table, dict]:
    """(table, metadata) of the probe set: at least cfg.n_tokens tokens in sequences of <= cfg.seq_len.

    Each sequence is a task item (tasks taken in turn) or, with probability
    cfg.generic_share, generic text; the order is fixed by the seed.
    """
    cfg = ProbeSettings.of(cfg)
    rng = rng_for(seed, "probe")
    pools = {}
    for task, path in sorted(task_files.items()):
        rows = load_split(path).to_dict("records")
        rng_for(seed, "probe", task).shuffle(rows)
        pools[task] = [task_text(task, r) for r in rows]
    tasks = sorted(pools)
    cursors = dict.fromkeys(tasks, 0)
    budget, seq_len = cfg.n_tokens, cfg.seq_len
    sources, texts, ids, total, turn = [], [], [], 0, 0
    while total < budget:
        if not tasks or rng.random() < cfg.generic_share:
            src, text = "generic", world.generic(rng)["text"]
        else:
            src = tasks[turn % len(tasks)]
            turn += 1
            text = pools[src][cursors[src] % len(pools[src])]
            cursors[src] += 1
        t = tok(text, add_special_tokens=True)["input_ids"][:seq_len]
        if len(t) < 2:
            continue
        sources.append(src)
        texts.append(text)
        ids.append(t)
        total += len(t)
    table = pa.table({
        "seq_id": pa.array(np.arange(len(ids), dtype=np.int32)),
        "source": pa.array(sources, pa.string()),
        "text": pa.array(texts, pa.string()),
        "token_ids": pa.array(ids, pa.list_(pa.int32())),
    })
    meta = {"probe_hash": probe_hash(ids), "tokenizer_hash": tokenizer_hash(tok), "n_tokens": total,
            "n_sequences": len(ids), "seq_len": seq_len}
    return table, meta


def write_probe(path, table: pa.Table, meta: dict, tokenizer_model: str = "base") -> None:
    write_parquet(path, table, metadata={META_PREFIX + k: v for k, v in {**meta, "tokenizer_model": tokenizer_model}.items()})


def read_probe(path) -> tuple[pa.Table, dict]:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise ValueError(f"{path}: cannot read the probe set ({str(e).splitlines()[0]})") from None
    raw = table.schema.metadata or {}
    meta = {k.decode()[len(META_PREFIX):]: v.decode() for k, v in raw.items() if k.decode().startswith(META_PREFIX)}
    if "probe_hash" not in meta:
        raise ValueError(f"{path}: not a probe set (no featdrift.probe_hash metadata)")
    return table, meta


def shard_range(n_sequences: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Sequences [start, stop) of one shard: contiguous seq_ids, shards differ in size by at most one."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range (activations.shards = {n_shards})")
    return shard * n_sequences // n_shards, (shard + 1) * n_sequences // n_shards
