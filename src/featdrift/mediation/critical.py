"""Critical samples: items of an out-of-domain selection task that base gets wrong and RL gets right."""

from __future__ import annotations

import pandas as pd

from ..io import read_parquet


def critical_samples(base_samples: str, rl_samples: str, tasks: list[str]) -> pd.DataFrame:
    """(task, doc_id, prompt) of every item with base wrong and RL right, from the eval stage's samples."""
    base, rl = read_parquet(base_samples), read_parquet(rl_samples)
    cols = ["task", "doc_id"]
    both = base[cols + ["correct", "prompt"]].merge(rl[cols + ["correct"]], on=cols, suffixes=("_base", "_rl"),
                                                    validate="one_to_one")
    if both["prompt"].isna().any():
        raise ValueError(f"{base_samples}: samples have no prompt column; rerun the eval stage")
    crit = both[both["task"].isin(tasks) & ~both["correct_base"] & both["correct_rl"]]
    return crit[cols + ["prompt"]].sort_values(cols, kind="stable").reset_index(drop=True)
