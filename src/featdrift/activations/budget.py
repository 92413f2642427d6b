"""Storage budget of activation capture, checked when the DAG is built (before any job runs).

The store keeps one row per probe token per model and layer: seq_id, pos, token_id (int32 each)
and d_model activations of `activations.dtype`. Parquet compression of float activations is
small, so the uncompressed size is the estimate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
INDEX_BYTES = 3 * 4  # seq_id, pos, token_id


class BudgetError(Exception):
    """The activations would exceed storage.max_bytes."""


def _hidden_size(cfg: dict) -> int | None:
    for c in (cfg, cfg.get("text_config") or {}):
        for key in ("hidden_size", "d_model", "n_embd"):
            if isinstance(c.get(key), int):
                return c[key]
    return None


def _hub_config(repo_id: str) -> Path | None:
    """config.json of a hub model already in the local Hugging Face cache (no network)."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    snapshots = home / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[-1] if found else None


def d_model(config: dict) -> int | None:
    """Width of the residual stream: the pretrain config, storage.d_model, or the model's config.json."""
    base = config["base"]
    if not base.get("pretrained"):
        return base["pretrain"]["model"]["d_model"]
    hint = config.get("storage", {}).get("d_model")
    if hint:
        return hint
    local = Path(base["pretrained"]) / "config.json"
    path = local if local.is_file() else _hub_config(base["pretrained"])
    if path is None:
        return None
    try:
        return _hidden_size(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def activation_bytes(config: dict, n_models: int, width: int) -> int:
    acts = config["activations"]
    per_row = width * DTYPE_BYTES[acts["dtype"]] + INDEX_BYTES
    return config["probe"]["n_tokens"] * len(acts["layers"]) * n_models * per_row


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def check(config: dict, n_models: int) -> int | None:
    """Bytes activation capture will write; raises BudgetError over storage.max_bytes.

    Returns None (and checks nothing) when d_model is unknown: a hub model not yet downloaded
    and no `storage.d_model` hint.
    """
    width = d_model(config)
    if width is None:
        return None
    total = activation_bytes(config, n_models, width)
    limit = config.get("storage", {}).get("max_bytes")
    if limit is not None and total > limit:
        acts = config["activations"]
        raise BudgetError(
            f"activations would write {_gb(total)} ({config['probe']['n_tokens']} tokens x "
            f"{len(acts['layers'])} layers x {n_models} models x d_model {width} x "
            f"{DTYPE_BYTES[acts['dtype']]} bytes), over storage.max_bytes = {_gb(limit)}; raise "
            f"storage.max_bytes or lower probe.n_tokens, activations.layers or train.checkpoints_per_epoch"
        )
    return total
