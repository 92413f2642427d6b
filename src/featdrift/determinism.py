"""The one switch for reproducible torch runs: same config, same machine -> same bytes."""

from __future__ import annotations

import os

import torch


def set_determinism(threads: int, seed: int | None = None, deterministic: bool = True) -> None:
    """Fix intra-op threads, the global seed and deterministic kernels.

    Fresh memory is not filled with NaN (torch's deterministic default): every op
    used here writes all of its output, and the fill costs seconds per GRPO step on CPU.
    """
    torch.set_num_threads(threads)
    if seed is not None:
        torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = False
