"""Paper scale's dataset loader, exercised on a local Parquet file (no hub)."""

import pandas as pd
import pytest

from featdrift.tasks.build import build_task
from featdrift.tasks.external import load_dataset_split


def _dataset(tmp_path):
    f = tmp_path / "gsm.parquet"
    pd.DataFrame({"question": [f"What is {i}+1?" for i in range(10)], "solution": [f"{i}+1={i + 1}" for i in range(10)],
                  "final": list(range(1, 11))}).to_parquet(f)
    return {"path": "parquet", "name": None, "data_files": {"train": str(f), "test": str(f)}, "train_split": "train",
            "test_split": "test", "columns": {"prompt": "question", "completion": "solution", "answer": "final"},
            "answer_regex": r"(\d+)"}


def test_column_mapping(tmp_path):
    df = load_dataset_split(_dataset(tmp_path), "test")
    assert list(df.columns) == ["prompt", "completion", "answer"]
    assert df.iloc[3].to_dict() == {"prompt": "What is 3+1?", "completion": "3+1=4", "answer": "4"}


def test_missing_column_is_named(tmp_path):
    ds = _dataset(tmp_path)
    ds["columns"]["answer"] = "label"
    with pytest.raises(ValueError, match=r"data.dataset.columns: \['label'\] not in dataset columns"):
        load_dataset_split(ds, "test")


def test_in_domain_task_from_dataset(tmp_path):
    cfg = {"source": "dataset", "dataset": _dataset(tmp_path), "n_train": 6, "n_test": 4, "params": {}}
    out = {"train": tmp_path / "train.parquet", "test": tmp_path / "test.parquet"}
    assert build_task("arithmetic", cfg, 0, out) == {"test": 4, "train": 6}
    assert pd.read_parquet(out["test"]).answer.tolist() == ["1", "2", "3", "4"]
