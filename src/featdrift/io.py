"""Atomic writers: a killed job must never leave a file that looks complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would survive the rename
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # writers that replace the file (safetensors) leave 0600 behind
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary sibling directory; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would survive the rename
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                f.chmod(0o644)  # save_pretrained writes safetensors 0600
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path, obj) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=False, width=1000))


def write_parquet(path, table: pa.Table | "pandas.DataFrame", metadata: dict | None = None) -> None:
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path) -> "pandas.DataFrame":
    """Read a Parquet file, naming the file if it is missing, truncated or not Parquet."""
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as e:
        raise ValueError(f"{path}: cannot read Parquet ({str(e).splitlines()[0]})") from None
