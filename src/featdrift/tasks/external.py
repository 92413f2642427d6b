"""Paper scale: in-domain train/test from a datasets-library dataset with a column mapping."""

from __future__ import annotations

import pandas as pd


def load_dataset_split(ds: dict, split: str) -> pd.DataFrame:
    """Rows with the columns the synthetic world uses: prompt, completion, answer."""
    import datasets

    try:
        d = datasets.load_dataset(ds["path"], ds.get("name"), data_files=ds.get("data_files"), split=split)
    except (FileNotFoundError, ValueError, ConnectionError) as e:
        raise ValueError(f"data.dataset: cannot load {ds['path']!r} split {split!r} ({str(e).splitlines()[0]})") from None
    cols = ds["columns"]
    missing = [c for c in cols.values() if c and c not in d.column_names]
    if missing:
        raise ValueError(f"data.dataset.columns: {missing} not in dataset columns {d.column_names}")
    df = pd.DataFrame({
        "prompt": d[cols["prompt"]],
        "completion": d[cols["completion"]] if cols.get("completion") else [""] * len(d),
        "answer": [str(a) for a in d[cols["answer"]]],
    })
    if len(df) == 0:
        raise ValueError(f"data.dataset: split {split!r} of {ds['path']!r} is empty")
    return df
