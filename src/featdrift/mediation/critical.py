"""Critical samples: items of an out-of-domain selection task that base gets wrong and RL gets right.

Beside them, the reverse flips (base right, RL wrong): on a task near chance both counts are churn, and
critical samples only measure RL's generalization where they clearly outnumber the reverse flips.
"""

from __future__ import annotations

import pandas as pd

from ..io import read_parquet

_KEY = ["task", "doc_id"]


def critical_samples(base_samples: str, rl_samples: str, tasks: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """(task, doc_id, prompt) of every item with base wrong and RL right, and per task the number of
    reverse flips (base right, RL wrong), from the eval stage's samples."""
    base, rl = read_parquet(base_samples), read_parquet(rl_samples)
    both = base[_KEY + ["correct", "prompt"]].merge(rl[_KEY + ["correct"]], on=_KEY, suffixes=("_base", "_rl"),
                                                    validate="one_to_one")
    if both["prompt"].isna().any():
        raise ValueError(f"{base_samples}: samples have no prompt column; rerun the eval stage")
    both = both[both["task"].isin(tasks)]
    crit = both[~both["correct_base"] & both["correct_rl"]]
    rev = both[both["correct_base"] & ~both["correct_rl"]].groupby("task").size()
    reverse = {t: int(rev.get(t, 0)) for t in tasks}
    return crit[_KEY + ["prompt"]].sort_values(_KEY, kind="stable").reset_index(drop=True), reverse
