"""The online activation source: the same token stream gives the same dictionary as the store."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from featdrift.activations.capture import capture_shard
from featdrift.activations.online import OnlineSource, corpus_sequences
from featdrift.activations.store import ActivationStore
from featdrift.config import ConfigError
from featdrift.dictionaries.build import build_dictionary
from featdrift.dictionaries.model import load_dictionary
from featdrift.io import write_parquet
from featdrift.models.tokenizer import char_tokenizer

from helpers.acts import ARCH, PROBE, make_model, make_probe

LAYER = 1
MODELS = ["base", "sft-1"]
# float32 shards in one shard: the store's units are then the online source's (batches of 8 sequences)
ACTS32 = {"shards": 1, "dtype": "float32", "batch_size": 8, "device": "cpu"}


def online_cfg(probe, column="token_ids", **kw):
    return {"corpus": [{"path": str(probe), "column": column}], "seq_len": PROBE["seq_len"],
            "batch_size": ACTS32["batch_size"], "device": "cpu", "dtype": "float32", **kw}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("online")
    paths = [str(make_model(root / m, seed)) for seed, m in enumerate(MODELS)]
    probe = make_probe(root, paths[0])
    shards = []
    for name, path in zip(MODELS, paths):
        out = str(root / "acts" / name / f"layer-{LAYER}" / "part-0.parquet")
        capture_shard(name, path, str(probe), [LAYER], 0, ACTS32, {LAYER: out})
        shards.append([out])
    return root, paths, probe, shards


def test_online_rows_are_the_stored_rows(world):
    _, paths, probe, shards = world
    store = ActivationStore(shards, MODELS)
    online = OnlineSource(paths, MODELS, LAYER, online_cfg(probe), tokens=PROBE["n_tokens"], seed=0)
    assert [u[2] for u in online.units] == [u[2] for u in store.units] and online.n_rows == store.n_rows
    for (sa, pa_, xa), (sb, pb, xb) in zip(store, online):
        assert torch.equal(sa, sb) and torch.equal(pa_, pb) and torch.equal(xa, xb)
    # a text column is tokenized as the probe set was: the same ids, so the same rows
    text = OnlineSource(paths[:1], MODELS[:1], LAYER, online_cfg(probe, "text"), tokens=PROBE["n_tokens"], seed=0)
    assert (text.ids == online.ids).all() and (text.offsets == online.offsets).all()


def test_online_and_store_train_the_same_dictionary(world, dict_section, tmp_path):
    _, paths, probe, shards = world
    cfg = dict_section(tokens=6000, batch_size=128, buffer_rows=512, scale_rows=512, calib_rows=512)
    online = OnlineSource(paths, MODELS, LAYER, online_cfg(probe), tokens=PROBE["n_tokens"], seed=0)
    build_dictionary("cc-sft-1", MODELS, shards, LAYER, cfg, 0, 1, str(tmp_path / "store"))
    build_dictionary("cc-sft-1", MODELS, online, LAYER, cfg, 0, 1, str(tmp_path / "online"))
    a, cfg_a = load_dictionary(tmp_path / "store")
    b, cfg_b = load_dictionary(tmp_path / "online")
    for key, t in a.state_dict().items():  # bytewise, float32
        assert torch.equal(t, b.state_dict()[key]), key
    assert (tmp_path / "store/curve.parquet").read_bytes() == (tmp_path / "online/curve.parquet").read_bytes()
    assert "source" not in cfg_a and cfg_b["source"] == "online" and cfg_b["online"]["tokens"] == online.n_rows


def test_corpus_mixture_is_seeded_weighted_and_budgeted(tmp_path):
    tok = char_tokenizer(ARCH["max_len"])
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(a, pd.DataFrame({"text": [f"alpha {i} {'x' * (i % 7)}" for i in range(400)]}))
    write_parquet(b, pd.DataFrame({"body": [f"beta {i}" for i in range(30)]}))
    corpus = [{"path": str(a)}, {"path": str(b), "column": "body", "weight": 3.0}]
    ids, offs = corpus_sequences(corpus, tok, 12, 2000, seed=0)
    again = corpus_sequences(corpus, tok, 12, 2000, seed=0)
    assert (ids == again[0]).all() and (offs == again[1]).all()
    assert offs[-1] >= 2000 and offs[-1] - offs[-2] <= 12  # budget met, sequences cut to seq_len
    texts = [tok.decode(ids[offs[i]:offs[i + 1]], skip_special_tokens=True) for i in range(len(offs) - 1)]
    n_beta = sum(t.startswith("beta") for t in texts)
    assert n_beta == 30  # the heavier source ran out and left the mixture; alpha filled the budget
    assert texts[:40].count("beta 0") == 1 and sum(t.startswith("beta") for t in texts[:40]) > 20
    other = corpus_sequences(corpus, tok, 12, 2000, seed=1)
    assert not (len(other[0]) == len(ids) and (other[0] == ids).all())


def test_online_source_errors_name_the_culprit(world, tmp_path):
    _, paths, probe, _ = world
    with pytest.raises(ValueError, match=r"probe.parquet: no column 'words'"):
        OnlineSource(paths[:1], MODELS[:1], LAYER, online_cfg(probe, "words"), tokens=100, seed=0)
    with pytest.raises(ValueError, match=r"nobody/no-such-corpus: cannot load the corpus source"):
        OnlineSource(paths[:1], MODELS[:1], LAYER, online_cfg(probe) | {"corpus": [{"path": "nobody/no-such-corpus"}]},
                     tokens=100, seed=0)
    with pytest.raises(ConfigError, match=r"dictionaries.online.corpus: empty"):
        OnlineSource(paths[:1], MODELS[:1], LAYER, online_cfg(probe) | {"corpus": []}, tokens=100, seed=0)
    other = tmp_path / "other"
    tok = char_tokenizer(ARCH["max_len"])
    tok.add_tokens(["<extra>"])
    make_model(other, 2, tok)
    with pytest.raises(ValueError, match=r"tokenizer of model 'sft-1'"):
        OnlineSource([paths[0], str(other)], MODELS, LAYER, online_cfg(probe), tokens=100, seed=0)


def test_hub_sources_are_streamed_in_order(tmp_path, monkeypatch):
    """A hub id goes through datasets.load_dataset(..., streaming=True) (here a local Parquet file
    stands in for the hub): read in order, a batch at a time, nothing loaded beyond what is used."""
    import datasets

    data = tmp_path / "train-00000.parquet"
    write_parquet(data, pd.DataFrame({"text": [f"doc {i}" for i in range(600)], "n": range(600)}))
    calls = []
    real = datasets.load_dataset

    def fake(path, name=None, split="train", streaming=False):
        calls.append((path, name, split, streaming))
        return real("parquet", data_files={"train": str(data)}, split=split, streaming=streaming)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    tok = char_tokenizer(ARCH["max_len"])
    ids, offs = corpus_sequences([{"path": "someone/corpus", "name": "cfg", "split": "train"}], tok, 12, 100, seed=0)
    assert calls == [("someone/corpus", "cfg", "train", True)]
    texts = [tok.decode(ids[offs[i]:offs[i + 1]], skip_special_tokens=True) for i in range(len(offs) - 1)]
    assert texts == [f"doc {i}" for i in range(len(texts))] and offs[-1] >= 100
