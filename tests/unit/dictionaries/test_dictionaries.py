"""Issue 4: SAEs and crosscoders: recovery of a known sparse dictionary, determinism, artifacts."""

from __future__ import annotations

import json

import pytest
import torch

from featdrift.activations.capture import capture_shard
from featdrift.activations.store import ActivationStore
from featdrift.dictionaries import load_dictionary
from featdrift.dictionaries.build import build_dictionary, measure_dictionary
from featdrift.dictionaries.settings import DictionaryConfig
from featdrift.dictionaries.train import train_dictionary

from helpers.acts import ACTS, make_model, make_probe, matched_fraction, sparse_data, write_synthetic_shards


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    xs, atoms = sparse_data(12000, 16, 32, 3, n_models=2, seed=0)
    shards = write_synthetic_shards(root, xs, ["base", "sft-1"])
    return shards, atoms


@pytest.mark.parametrize("arch,models", [("batchtopk", 1), ("relu", 1), ("batchtopk", 2), ("relu", 2)])
def test_recovers_known_sparse_dictionary(synthetic, dict_section, arch, models):
    shards, atoms = synthetic
    store = ActivationStore(shards[:models])
    cfg = DictionaryConfig.from_config(dict_section(arch=arch, tokens=240000))
    D, _ = train_dictionary(store, ["base", "sft-1"][:models], cfg, seed=0, threads=1)
    for m in range(models):
        assert matched_fraction(D.W_dec[m], atoms[m]) >= 0.8, (arch, m)


def test_two_runs_give_identical_bytes(synthetic, dict_section, tmp_path):
    shards, _ = synthetic
    cfg = DictionaryConfig.from_config(dict_section(arch="batchtopk", tokens=10000))
    outs = []
    for run in range(2):
        D, _ = train_dictionary(ActivationStore(shards), ["base", "sft-1"], cfg, seed=0, threads=1)
        D.save(tmp_path / f"run{run}")
        outs.append([(tmp_path / f"run{run}" / f).read_bytes() for f in ("weights.safetensors", "cfg.json")])
    assert outs[0] == outs[1]


def test_readout_thresholds_match_the_joint_l0(synthetic, dict_section):
    shards, _ = synthetic
    cfg = DictionaryConfig.from_config(dict_section(arch="batchtopk", tokens=30000))
    D, _ = train_dictionary(ActivationStore(shards), ["base", "sft-1"], cfg, seed=0, threads=1)
    x = torch.cat([x for _, _, x in ActivationStore(shards)])[:4000]
    joint = float((D.encode(x) > 0).sum(-1).float().mean())
    for m in range(2):
        slice_l0 = float((D.encode_model(m, x[:, m]) > 0).sum(-1).float().mean())
        assert abs(slice_l0 - joint) <= 0.15 * joint
    assert D.threshold is not None and len(D.thresholds) == 2


def test_build_writes_the_artifact_contract(tmp_path, dict_section):
    models = {"base": make_model(tmp_path / "base", 0), "sft-1": make_model(tmp_path / "sft-1", 1)}
    probe = make_probe(tmp_path, models["base"])
    shards = []
    for name, path in models.items():
        paths = []
        for s in range(ACTS["shards"]):
            out = str(tmp_path / "acts" / name / "layer-1" / f"part-{s}.parquet")
            capture_shard(name, str(path), str(probe), [1], s, ACTS, {1: out})
            paths.append(out)
        shards.append(paths)
    cfg = dict_section(arch="batchtopk", tokens=3000, ce_sequences=4)
    for name, ms, sh in (("sae-base", ["base"], shards[:1]), ("cc-sft-1", ["base", "sft-1"], shards)):
        out = tmp_path / "dicts" / name / "layer-1"
        build_dictionary(name, ms, sh, 1, cfg, 0, 1, str(out), saelens=name.startswith("sae-"), context_size=40)
        metrics = measure_dictionary(str(out), ms, sh, [str(models[m]) for m in ms], str(probe), 1, cfg, 1,
                                     str(out / "metrics.json"))
        D, c = load_dictionary(out)
        M = len(ms)
        assert D.W_enc.shape == (M, 32, 64) and D.W_dec.shape == (M, 64, 32)
        assert D.b_enc.shape == (64,) and D.b_dec.shape == (M, 32)
        assert c["models"] == ms and c["d_model"] == 32 and c["n_latents"] == 64 and c["layer"] == 1
        assert c["arch"] == "batchtopk" and c["k"] == 3 and len(c["scales"]) == M
        assert c["threshold"] > 0 and len(c["thresholds"]) == M
        saved = json.loads((out / "metrics.json").read_text())
        assert saved == json.loads(json.dumps(metrics))
        for m in ms:
            pm = saved["per_model"][m]
            for key in ("fvu", "slice_fvu", "slice_l0", "ce_clean", "ce_spliced", "ce_zero_ablated", "ce_recovered"):
                assert key in pm, key
        for key in ("fvu", "l0", "dead_frac"):
            assert key in saved
        assert (out / "saelens" / "sae_weights.safetensors").exists() == (M == 1)
    # The SAELens export takes raw activations and reproduces our SAE.
    from safetensors.torch import load_file

    D, _ = load_dictionary(tmp_path / "dicts" / "sae-base" / "layer-1")
    t = load_file(str(tmp_path / "dicts" / "sae-base" / "layer-1" / "saelens" / "sae_weights.safetensors"))
    x = next(iter(ActivationStore(shards[:1])))[2][:, 0]
    pre = x @ t["W_enc"] + t["b_enc"]
    f = torch.relu(pre) * (pre > t["threshold"])
    torch.testing.assert_close(f @ t["W_dec"] + t["b_dec"], D.reconstruct(x[:, None])[:, 0], atol=1e-4, rtol=1e-4)


def test_workflow_builds_the_base_sae(tiny_run):
    """The rules end to end on the tiny config: probe -> activation shards -> sae-base (+ SAELens export)."""
    from helpers import snakemake

    snakemake(tiny_run, "results/dicts/sae-base/layer-1/metrics.json")
    out = tiny_run / "results" / "dicts" / "sae-base" / "layer-1"
    for f in ("weights.safetensors", "cfg.json", "metrics.json", "lineage.json", "metrics.lineage.json", "saelens/cfg.json",
              "saelens/sae_weights.safetensors"):
        assert (out / f).exists(), f
    assert (tiny_run / "results" / "acts" / "base" / "layer-1" / "part-0.parquet").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"] == ["base"] and 0 <= metrics["dead_frac"] <= 1 and metrics["fvu"] < 1
    # Nothing to redo on a second run.
    proc = snakemake(tiny_run, "results/dicts/sae-base/layer-1/metrics.json", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
