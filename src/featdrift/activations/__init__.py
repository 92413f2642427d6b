"""The activation store: probe set, capture to Parquet, and streaming readers (see DESIGN.md)."""

from .store import ActivationStore, ShardError, shard_meta

__all__ = ["ActivationStore", "ShardError", "shard_meta"]
