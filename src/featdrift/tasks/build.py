"""Write one task's train and test splits as Parquet."""

from __future__ import annotations

import pandas as pd

from ..io import read_parquet, write_parquet
from .external import load_dataset_split
from .registry import IN_DOMAIN, draw_unique


def task_params(task: str, data_cfg: dict) -> dict:
    return dict(data_cfg.get("params", {}).get(task, {}))


def build_task(task: str, data_cfg: dict, seed: int, out: dict) -> dict[str, int]:
    """Draw the task's items and write `out['train']` and `out['test']`.

    Train and test are drawn together as distinct prompts, so they never overlap
    (small multiple-choice spaces aside, see `draw_unique`).
    """
    params = task_params(task, data_cfg)
    n_test = data_cfg["n_test"]
    counts = {}
    if task == IN_DOMAIN and data_cfg.get("source") == "dataset":
        ds = data_cfg["dataset"]
        splits = {"test": load_dataset_split(ds, ds["test_split"]).head(n_test).to_dict("records"),
                  "train": load_dataset_split(ds, ds["train_split"]).head(data_cfg["n_train"]).to_dict("records")}
    else:
        items = draw_unique(task, seed, n_test + data_cfg["n_train"], params=params)
        splits = {"test": items[:n_test], "train": items[n_test:]}
    for split, rows in splits.items():
        df = pd.DataFrame(rows)
        df.insert(0, "doc_id", range(len(df)))
        write_parquet(out[split], df, metadata={"featdrift.task": task, "featdrift.split": split, "featdrift.seed": seed})
        counts[split] = len(df)
    return counts


def load_split(path) -> pd.DataFrame:
    df = read_parquet(path)
    if len(df) == 0:
        raise ValueError(f"{path}: task file is empty")
    return df
