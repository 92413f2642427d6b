"""Issue 4: the probe set and the Parquet activation store (schema, metadata, pairing, failures)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from featdrift.activations.capture import capture_shard, run_capture
from featdrift.activations.probe import build_probe, read_probe
from featdrift.activations.store import ActivationStore, ShardError, shard_meta
from featdrift.models.load import load_model
from featdrift.models.tokenizer import char_tokenizer

from helpers.acts import ACTS, ARCH, PROBE, make_model, make_probe, make_tasks

LAYERS = [0, 1]


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    root = tmp_path_factory.mktemp("acts")
    models = {"base": make_model(root / "base", 0), "sft-1": make_model(root / "sft-1", 1)}
    probe = make_probe(root, models["base"])
    shards = {}
    for name, path in models.items():
        for s in range(ACTS["shards"]):
            outs = {L: str(root / "acts" / name / f"layer-{L}" / f"part-{s}.parquet") for L in LAYERS}
            capture_shard(name, str(path), str(probe), LAYERS, s, ACTS, outs)
            for L in LAYERS:
                shards.setdefault((name, L), []).append(outs[L])
    return root, models, probe, shards


def test_probe_is_deterministic_and_within_budget(tmp_path):
    tok = char_tokenizer(ARCH["max_len"])
    files = make_tasks(tmp_path)
    a, meta_a = build_probe(files, tok, PROBE, seed=0)
    b, meta_b = build_probe(files, tok, PROBE, seed=0)
    assert a.equals(b) and meta_a == meta_b
    lengths = [len(t) for t in a.column("token_ids").to_pylist()]
    assert max(lengths) <= PROBE["seq_len"]
    assert PROBE["n_tokens"] <= sum(lengths) < PROBE["n_tokens"] + PROBE["seq_len"]
    assert set(a.column("source").to_pylist()) == {"arithmetic", "compare", "generic"}
    c, meta_c = build_probe(files, tok, PROBE, seed=1)
    assert meta_c["probe_hash"] != meta_a["probe_hash"]


def test_shard_schema_and_metadata(captured):
    root, _, probe, shards = captured
    _, pmeta = read_probe(probe)
    total = 0
    for s, path in enumerate(shards[("base", 1)]):
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        assert schema.names == ["seq_id", "pos", "token_id", "act"]
        assert [schema.field(n).type for n in ("seq_id", "pos", "token_id")] == [pa.int32()] * 3
        assert schema.field("act").type == pa.list_(pa.float16(), ARCH["d_model"])
        meta = shard_meta(path)
        assert meta["model"] == "base" and meta["layer"] == "1" and meta["hook"] == "resid_post"
        assert meta["d_model"] == str(ARCH["d_model"]) and meta["dtype"] == "float16"
        assert meta["tokenizer_hash"] == pmeta["tokenizer_hash"] and meta["probe_hash"] == pmeta["probe_hash"]
        assert int(meta["n_rows"]) == pf.metadata.num_rows and meta["shard"] == str(s)
        total += pf.metadata.num_rows
    assert total == int(pmeta["n_tokens"])


def test_rows_pair_across_models_and_match_the_model(captured):
    root, models, probe, shards = captured
    for s in range(ACTS["shards"]):
        a = pq.read_table(shards[("base", 1)][s])
        b = pq.read_table(shards[("sft-1", 1)][s])
        for col in ("seq_id", "pos", "token_id"):
            assert a.column(col).equals(b.column(col))
        assert not a.column("act").equals(b.column("act"))  # different models, different activations
    store = ActivationStore([shards[("base", 1)], shards[("sft-1", 1)]])
    assert store.n_models == 2 and store.layer == 1
    sid, pos, x = next(iter(store))
    assert x.shape[1:] == (2, ARCH["d_model"])
    # The stored rows are the model's residual stream after block 1 on the probe's tokens.
    table, _ = read_probe(probe)
    seq0 = table.column("token_ids")[int(sid[0])].as_py()
    model, _ = load_model(models["base"])
    ref = run_capture(model, torch.tensor([seq0]), [1])[1][0]
    n = len(seq0)
    assert torch.equal(pos[:n], torch.arange(n))
    torch.testing.assert_close(x[:n, 0], ref.half().float(), atol=0, rtol=0)


def test_reader_streams_every_row_once(captured):
    _, _, _, shards = captured
    store = ActivationStore([shards[("base", 0)]])
    seen = torch.cat([sid * 1000 + pos for sid, pos, _ in store])
    assert len(seen) == store.n_rows == len(torch.unique(seen))


def test_tokenizer_mismatch_fails_naming_both_models(captured, tmp_path):
    root, models, probe, _ = captured
    tok = char_tokenizer(ARCH["max_len"])
    tok.add_tokens(["<extra>"])
    other = make_model(tmp_path / "rl-9", 2, tok=tok)
    with pytest.raises(ValueError) as e:
        capture_shard("rl-9", str(other), str(probe), [1], 0, ACTS, {1: str(tmp_path / "x.parquet")})
    assert "'rl-9'" in str(e.value) and "'base'" in str(e.value)
    assert not (tmp_path / "x.parquet").exists()


def test_truncated_shard_fails_naming_the_file(captured, tmp_path):
    _, _, _, shards = captured
    src = shards[("base", 1)][0]
    bad = tmp_path / "part-0.parquet"
    data = open(src, "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match=str(bad)):
        ActivationStore([[str(bad)]])
    with pytest.raises(ShardError, match="truncated"):
        ActivationStore([[str(bad)]])
