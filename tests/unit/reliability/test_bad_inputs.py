"""Issue 8, bad inputs: each fails with one line naming the culprit (file, model, dictionary).

Covered elsewhere (docs/reliability.md lists them): config types, ranges, unknown keys and
missing paths (test_config.py), a missing base model directory and a non-causal-LM folder
(test_models.py), a truncated shard (test_activations.py), a tokenizer mismatch at capture
(test_activations.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from featdrift.activations.capture import capture_shard
from featdrift.activations.probe import build_probe
from featdrift.activations.store import ActivationStore, ShardError, act_schema, shard_writer
from featdrift.dictionaries.metrics import ce_recovered
from featdrift.dictionaries.model import Dictionary, load_dictionary
from featdrift.models.load import load_model
from featdrift.models.tokenizer import char_tokenizer
from featdrift.tasks.build import load_split

from helpers.acts import ACTS, ARCH, PROBE, make_model, make_probe, make_tasks

torch.set_num_threads(1)
D = 16


def _meta(model: str, n_rows: int, tokenizer_hash: str = "tok", d: int = D) -> dict:
    return {"model": model, "layer": 0, "hook": "resid_post", "d_model": d, "dtype": "float32",
            "tokenizer_hash": tokenizer_hash, "probe_hash": "probe", "shard": 0, "n_shards": 1, "n_rows": n_rows}


def write_shard(path, xs: np.ndarray, model: str = "base", tokenizer_hash: str = "tok", rows_per_group: int = 256) -> str:
    """One float32 shard of xs (n, d), written with capture's writer (store.shard_writer).

    Built from raw Arrow arrays, not act_batch, so that it can also hold values act_batch refuses."""
    n, d = xs.shape
    schema = act_schema(d, "float32", _meta(model, n, tokenizer_hash, d))
    path.parent.mkdir(parents=True, exist_ok=True)
    with shard_writer(path, schema) as w:
        for a in range(0, n, rows_per_group):
            b = min(n, a + rows_per_group)
            r = np.arange(a, b, dtype=np.int32)
            acts = pa.FixedSizeListArray.from_arrays(pa.array(xs[a:b].reshape(-1), pa.float32()), d)
            w.write_batch(pa.RecordBatch.from_arrays(
                [pa.array(r // 32), pa.array(r % 32), pa.array(np.zeros(b - a, np.int32)), acts], schema=schema))
    return str(path)


def _acts(n: int = 1024, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)


# ---- activations with NaN or inf -------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_a_shard_fails_naming_the_file_and_row_group(tmp_path, bad):
    xs = _acts()
    xs[700, 3] = bad  # row group 2 (256 rows each)
    path = write_shard(tmp_path / "acts/base/layer-0/part-0.parquet", xs)
    store = ActivationStore([[path]])  # the metadata is fine; the values are checked as they stream
    with pytest.raises(ShardError) as e:
        list(store)
    assert str(e.value) == f"{path}: row group 2 holds 1 NaN or inf activation values"


def test_capture_refuses_float16_overflow_and_writes_nothing(tmp_path):
    """A model whose residual stream exceeds float16's range (65504) would store inf: refused, naming the model."""
    path = make_model(tmp_path / "big", 0)
    model, tok = load_model(path)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(1e8)
    model.save_pretrained(path)
    probe = make_probe(tmp_path, path)
    out = tmp_path / "acts/big/layer-1/part-0.parquet"
    with pytest.raises(ShardError) as e:
        capture_shard("big", str(path), str(probe), [1], 0, ACTS, {1: str(out)})
    msg = str(e.value)
    assert msg.startswith("activations of model 'big' at layer 1 (shard 0) hold ") and "NaN or inf" in msg
    assert "float16 overflows above 65504" in msg and "\n" not in msg
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))  # the atomic writer removed its temporary


# ---- corrupted or mismatched shards ----------------------------------------------------------

def test_corrupted_shard_fails_naming_the_file_and_row_group(tmp_path):
    path = write_shard(tmp_path / "part-0.parquet", _acts())
    data = bytearray(open(path, "rb").read())
    col = pq.ParquetFile(path).metadata.row_group(1).column(3)  # `act` of row group 1
    start = col.data_page_offset + col.total_compressed_size // 2
    data[start : start + 32] = bytes(32)  # zeros: valid floats, so only the page CRC can tell
    open(path, "wb").write(bytes(data))
    with pytest.raises(ShardError, match=rf"^{path}: cannot read row group 1 \(.*CRC checksum verification failed"):
        list(ActivationStore([[path]]))


def test_corrupted_captured_shard_fails_naming_the_file(tmp_path):
    """Captured shards carry page checksums (store.shard_writer): zeroed value bytes do not pass as activations."""
    path = make_model(tmp_path / "base", 0)
    probe = make_probe(tmp_path, path)
    out = tmp_path / "part-0.parquet"
    capture_shard("base", str(path), str(probe), [1], 0, ACTS, {1: str(out)})
    data = bytearray(out.read_bytes())
    col = pq.ParquetFile(out).metadata.row_group(0).column(3)
    start = col.data_page_offset + col.total_compressed_size // 2
    data[start : start + 8] = bytes(8)
    out.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"^{out}: cannot read row group 0 \(.*CRC checksum verification failed"):
        list(ActivationStore([[str(out)]]))


def test_not_parquet_fails_naming_the_file(tmp_path):
    path = tmp_path / "part-0.parquet"
    path.write_bytes(b"PAR1" + bytes(100))
    with pytest.raises(ShardError, match=rf"^{path}: truncated or corrupt activation shard .*delete it and rerun"):
        ActivationStore([[str(path)]])


def test_tokenizer_mismatch_between_stored_models_names_both(tmp_path):
    a = write_shard(tmp_path / "acts/base/part-0.parquet", _acts(), "base", "tokA")
    b = write_shard(tmp_path / "acts/rl-4/part-0.parquet", _acts(seed=1), "rl-4", "tokB")
    with pytest.raises(ShardError) as e:
        ActivationStore([[a], [b]])
    assert str(e.value) == (f"tokenizer of model 'rl-4' ({b}) differs from model 'base' ({a}): "
                            "rows do not pair across models")


# ---- a dictionary that does not fit -----------------------------------------------------------

@pytest.fixture(scope="module")
def small_dict(tmp_path_factory):
    """A saved d_model-16 SAE of 'base' at layer 1 (weights need not be trained for a shape check)."""
    root = tmp_path_factory.mktemp("dict")
    Dictionary(1, D, 8, "relu", cfg={"models": ["base"], "name": "sae-base", "layer": 1}).save(root / "sae-base/layer-1")
    return root / "sae-base/layer-1"


def test_dictionary_applied_to_activations_of_another_width_names_both(small_dict):
    Dct, _ = load_dictionary(small_dict)
    expected = f"dictionary {small_dict} (d_model 16) does not fit model 'base': its activations at layer 1 have width 32"
    with pytest.raises(ValueError) as e:
        Dct.encode_model("base", torch.zeros(5, 32))
    assert str(e.value) == expected
    with pytest.raises(ValueError, match=r"does not fit model 'base': its activations at layer 1 have width 32$"):
        Dct.encode(torch.zeros(5, 1, 32))
    assert Dct.encode_model("base", torch.zeros(5, D)).shape == (5, 8)  # the right width passes


def test_dictionary_spliced_into_a_model_of_another_width_names_both(small_dict, tmp_path):
    model = make_model(tmp_path / "sft-2", 0)  # d_model 32
    probe = make_probe(tmp_path, model)
    Dct, _ = load_dictionary(small_dict)
    with pytest.raises(ValueError) as e:
        ce_recovered(Dct, [str(model)], str(probe), 1, 10, 2)
    assert str(e.value) == (f"dictionary {small_dict} (d_model 16) does not fit model '{model}': "
                            f"its activations at layer 1 have width {ARCH['d_model']}")


# ---- empty task files -------------------------------------------------------------------------

def _empty_task_file(tmp_path, task: str, split: str = "train"):
    files = make_tasks(tmp_path)
    path = tmp_path / "data" / task / f"{split}.parquet"
    pd.DataFrame({"question": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str)}).to_parquet(path)
    return files, path


def test_empty_task_file_is_named_by_the_task_readers(tmp_path):
    """task_yaml (test split) and corpus (in-domain splits) read task files through load_split."""
    _, path = _empty_task_file(tmp_path, "compare", "test")
    with pytest.raises(ValueError) as e:
        load_split(path)
    assert str(e.value) == f"{path}: task file is empty"


def test_empty_task_file_is_named_by_the_probe(tmp_path):
    files, path = _empty_task_file(tmp_path, "compare")
    with pytest.raises(ValueError, match=f"^{path}: task file is empty$"):
        build_probe(files, char_tokenizer(ARCH["max_len"]), PROBE, seed=0)
