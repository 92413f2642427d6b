"""The one train / held-out split of activation rows, shared by training and every metric.

Whole probe sequences are held out (every `every`-th seq_id), not single tokens, so the
held-out tokens come from sequences that training never saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def held_out(seq_id: torch.Tensor, every: int) -> torch.Tensor:
    """Boolean mask of the held-out rows: seq_id divisible by `every`."""
    return seq_id % every == 0


def held_out_rows(store: Iterable, every: int, max_tokens: int) -> Iterator[torch.Tensor]:
    """The held-out activations x (rows, M, d) of a store's (seq_id, pos, x) batches, in store order,
    at most max_tokens rows in all: the rows every metric of a dictionary is measured on."""
    rows = 0
    for sid, _pos, x in store:
        x = x[held_out(sid, every)][: max_tokens - rows]
        if len(x):
            rows += len(x)
            yield x
        if rows >= max_tokens:
            return
