"""Every registered dictionary architecture end to end: train, save/load, readout, steering, SAELens export.

Parametrized over the registry, so a new architecture module is covered without a new test.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest
import torch
from safetensors.torch import load_file

from featdrift.models.hooks import block_hook
from featdrift.activations.store import ActivationStore
from featdrift.config import ConfigError, load_schema
from featdrift.dictionaries import load_dictionary
from featdrift.dictionaries.arch import ARCHITECTURES, get
from featdrift.dictionaries.saelens import export_saelens
from featdrift.dictionaries.settings import DictionaryConfig
from featdrift.dictionaries.train import train_dictionary
from featdrift.evaluation.steered import FeatureEdit, edit_hook
from featdrift.models.load import load_model

from helpers import ROOT
from helpers.acts import ARCH, make_model, write_synthetic_shards

LAYER = 1  # helpers.acts.ARCH: 2 blocks, d_model 32
MODELS = ["base", "sft-1"]


def _saelens_topk(x, t, c):
    """SAELens's TopK: relu of each row's k largest pre-activations, zero elsewhere."""
    pre = x @ t["W_enc"] + t["b_enc"]
    top = pre.topk(c["k"], dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))


# How SAELens encodes each exported architecture (raw x, its tensors t, its cfg.json c): a new export
# name needs an entry.
SAELENS_ENCODE = {
    "standard": lambda x, t, c: torch.relu(x @ t["W_enc"] + t["b_enc"]),
    "jumprelu": lambda x, t, c: (lambda pre: torch.relu(pre) * (pre > t["threshold"]))(x @ t["W_enc"] + t["b_enc"]),
    "topk": _saelens_topk,
}


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """Two tiny models (base, sft-1) and token ids to run them on."""
    root = tmp_path_factory.mktemp("arch-models")
    models = [load_model(make_model(root / name, seed))[0] for seed, name in enumerate(MODELS)]
    ids = torch.randint(0, models[0].config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    return models, ids


@pytest.fixture(scope="module")
def shards(lms, tmp_path_factory):
    """The models' own block-LAYER activations on random tokens, as paired shards: the steering check
    then edits activations from the distribution the dictionary was trained on."""
    models, _ = lms
    ids = torch.randint(0, models[0].config.vocab_size, (128, 32), generator=torch.Generator().manual_seed(1))
    xs = torch.stack([block_output(model, ids).reshape(-1, ARCH["d_model"]) for model in models], dim=1)
    return write_synthetic_shards(tmp_path_factory.mktemp("arch-acts"), xs.numpy(), MODELS)


def block_output(model, ids, edit=None) -> torch.Tensor:
    """Block LAYER's output, after `edit` if given (a hook registered after the edit's sees the edited output)."""
    seen = []
    with torch.no_grad(), (edit_hook(model, LAYER, edit) if edit else contextlib.nullcontext()):
        with block_hook(model, LAYER, lambda h: seen.append(h.detach().clone())):  # None: h unchanged
            model(ids)
    return seen[0]


def test_registry_matches_the_schema_and_names_unknown_archs():
    enum = load_schema(ROOT / "schemas/config.schema.yaml")["properties"]["dictionaries"]["properties"]["arch"]["enum"]
    assert sorted(enum) == sorted(ARCHITECTURES)
    known = ", ".join(sorted(ARCHITECTURES))
    with pytest.raises(ValueError, match=rf"^unknown dictionary architecture 'topq' \(known: {re.escape(known)}\)$"):
        get("topq")


def test_config_takes_exactly_the_training_keys(dict_section):
    section = dict_section()
    cfg = DictionaryConfig.from_config(section)  # the metrics' keys, the source the rules pick, job threads
    unread = {"eval_tokens", "ce_sequences", "source", "online", "device", "threads"}
    # designated shared latents are recorded where they are on (trees trained before them keep their record);
    # the rules' params are the same dict (DictionaryConfig.training)
    assert set(cfg.as_dict()) == set(section) - unread - {"shared_fraction", "shared_l1"}
    assert cfg.as_dict() == DictionaryConfig.training(section)
    on = {**section, "arch": "relu", "shared_fraction": 0.25}
    assert set(DictionaryConfig.from_config(on).as_dict()) == set(section) - unread
    assert DictionaryConfig.from_config(on).as_dict() == DictionaryConfig.training(on)
    with pytest.raises(ConfigError, match=r"^dictionaries: unknown key 'n_latent'$"):
        DictionaryConfig.from_config({**section, "n_latent": 3})
    with pytest.raises(ConfigError, match=r"^dictionaries.arch: unknown dictionary architecture 'topq'"):
        DictionaryConfig.from_config({**section, "arch": "topq"})


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_end_to_end(name, shards, lms, dict_section, tmp_path):
    arch = ARCHITECTURES[name]
    cfg = DictionaryConfig.from_config(dict_section(arch=name, tokens=6000, dead_tokens=1000))
    for M in (1, 2):
        D, curve = train_dictionary(ActivationStore(shards[:M]), MODELS[:M], cfg, seed=0, threads=1)
        assert D.architecture is arch and curve[-1]["l0"] > 0
        D.save(tmp_path / f"M{M}")
        L, saved = load_dictionary(tmp_path / f"M{M}")
        assert saved["arch"] == name and all(saved[k] == getattr(cfg, k) for k in arch.cfg_keys)
        for t in ("W_enc", "b_enc", "W_dec", "b_dec", *arch.tensors):
            assert torch.equal(getattr(L, t), getattr(D, t)), t

        # Per-model readout: the architecture's, the same before and after a save, and sparse.
        x = next(iter(ActivationStore(shards[:M])))[2][:256]
        for m in range(M):
            f = L.encode_model(MODELS[m], x[:, m])
            assert torch.equal(f, D.encode_model(m, x[:, m]))
            assert f.shape == (256, cfg.n_latents) and 0 < float((f > 0).float().sum(-1).mean()) < cfg.n_latents
        assert torch.isfinite(L.encode(x)).all()

    # Steering with the crosscoder's per-model readout, in a real block of matching width.
    models, ids = lms
    model, m = models[1], "sft-1"
    clean = block_output(model, ids)
    fired = (L.encode_model(m, clean) > 0).flatten(0, -2).any(0)
    S = fired.nonzero().flatten()[:8].tolist()
    assert S, "no feature fires on the model's activations: the steering check would be vacuous"
    assert torch.equal(block_output(model, ids, FeatureEdit(L, m, S, c=1.0)), clean)
    with torch.no_grad():
        contrib = L.encode_model(m, clean)[..., S].double() @ L.decoder_raw(m)[S].double()
    assert contrib.abs().max() > 1e-3
    edited = block_output(model, ids, FeatureEdit(L, m, S, c=0.0))
    torch.testing.assert_close(edited.double(), clean.double() - contrib, rtol=0, atol=1e-5)

    # SAELens export of the SAE (M = 1): the registry's architecture name and tensors, raw units.
    sae, _ = load_dictionary(tmp_path / "M1")
    export_saelens(sae, tmp_path / "saelens", "base", LAYER, 32)
    scfg = json.loads((tmp_path / "saelens" / "cfg.json").read_text())
    t = load_file(str(tmp_path / "saelens" / "sae_weights.safetensors"))
    assert scfg["architecture"] == arch.saelens_name
    assert set(t) == {"W_enc", "b_enc", "W_dec", "b_dec", *arch.saelens_tensors(sae)}
    assert arch.saelens_name in SAELENS_ENCODE, f"add how SAELens encodes {arch.saelens_name!r} to SAELENS_ENCODE"
    x = next(iter(ActivationStore(shards[:1])))[2][:256, 0]
    f = SAELENS_ENCODE[arch.saelens_name](x, t, scfg)
    torch.testing.assert_close(f @ t["W_dec"] + t["b_dec"], sae.reconstruct(x[:, None])[:, 0], atol=1e-4, rtol=1e-4)


def test_relu_designated_shared_latents_are_tied(shards, dict_section):
    """A crosscoder's first shared_fraction of latents keep one decoder for every model; an SAE ignores them."""
    cfg = dict_section(arch="relu", tokens=6000, shared_fraction=0.125)
    assert cfg["n_latents"] * 0.125 == 8
    D, _ = train_dictionary(ActivationStore(shards), MODELS, DictionaryConfig.from_config(cfg), seed=0, threads=1)
    assert torch.equal(D.W_dec[0, :8], D.W_dec[1, :8]) and D.W_dec[0, :8].norm() > 0
    assert not torch.equal(D.W_dec[0, 8:], D.W_dec[1, 8:])
    sae = [train_dictionary(ActivationStore(shards[:1]), MODELS[:1], DictionaryConfig.from_config(c), seed=0,
                            threads=1)[0] for c in (cfg, {**cfg, "shared_fraction": 0})]
    assert torch.equal(sae[0].W_dec, sae[1].W_dec)
