"""The one train / held-out split of activation rows, shared by training and every metric.

Whole probe sequences are held out (every `every`-th seq_id), not single tokens, so the
held-out tokens come from sequences that training never saw.
"""

from __future__ import annotations

import torch


def held_out(seq_id: torch.Tensor, every: int) -> torch.Tensor:
    """Boolean mask of the held-out rows: seq_id divisible by `every`."""
    return seq_id % every == 0
