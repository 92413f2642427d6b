"""Storage budget of activation capture, checked when the DAG is built (before any job runs).

The bytes are the plan's (featdrift.plan.store_bytes, the `probe capture` stage of `featdrift plan`):
one row per probe token per model and layer, seq_id, pos, token_id (int32 each) and d_model
activations of `activations.dtype`. Parquet compression of float activations is small, so the
uncompressed size is the estimate.
"""

from __future__ import annotations

from ..plan import DTYPE_BYTES, store_bytes as activation_bytes, width as d_model

__all__ = ["BudgetError", "activation_bytes", "check", "d_model"]


class BudgetError(Exception):
    """The activations would exceed storage.max_bytes."""


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def check(config: dict, n_models: int) -> int | None:
    """Bytes activation capture will write; raises BudgetError over storage.max_bytes.

    Returns None (and checks nothing) when d_model is unknown: a hub model not yet downloaded,
    not in featdrift.plan.KNOWN, and no `storage.d_model` hint.
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
