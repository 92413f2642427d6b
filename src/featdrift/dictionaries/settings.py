"""Typed training settings of a dictionary, from the validated `dictionaries` config section.

The schema (schemas/config.schema.yaml) owns the defaults and the ranges; this only
fixes which keys training reads, so that a typo or a new key is an error here and
not a silently ignored setting. eval_tokens and ce_sequences are read by the metrics
only; holdout_every is training's too (the held-out rows are never trained on).
Errors are ConfigErrors naming the key, like the other sections' (featdrift.settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from ..config import ConfigError
from ..settings import Section


@dataclasses.dataclass(frozen=True)
class DictionaryConfig(Section):
    """One dictionary's training settings; all required (the schema fills in the defaults)."""

    arch: str
    n_latents: int
    k: int
    l1_coeff: float
    l1_warmup: float
    lr: float
    tokens: int
    batch_size: int
    buffer_rows: int
    aux_k: int
    aux_coeff: float
    dead_tokens: int
    holdout_every: int
    scale_rows: int
    calib_rows: int
    shared_fraction: float = 0.0
    shared_l1: float = 0.5
    path: ClassVar[str] = "dictionaries"
    # the metrics job's keys, where rows come from (the rules pick the source: activations.online), job threads
    unread: ClassVar[frozenset[str]] = frozenset({"ce_sequences", "eval_tokens", "source", "online", "device",
                                                  "threads"})

    def __post_init__(self):
        from .arch import get  # the registry imports torch; config validation stays light without it

        try:
            get(self.arch)
        except ValueError as e:
            raise ConfigError(f"dictionaries.arch: {e}") from None

    @classmethod
    def training(cls, section: Mapping) -> dict:
        """What training reads of a `dictionaries` section, by sorted key: the rules' params and cfg.json's
        "train". Designated shared latents off, their keys are left out, so that dictionaries trained
        before the keys existed keep their params (no rerun) and their record."""
        out = {k: v for k, v in sorted(section.items()) if k not in cls.unread}
        if not out.get("shared_fraction"):
            out.pop("shared_fraction", None)
            out.pop("shared_l1", None)
        return out

    def as_dict(self) -> dict:
        """The settings by sorted key, as recorded in cfg.json ("train")."""
        return self.training(dataclasses.asdict(self))
