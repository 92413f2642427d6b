"""Typed config sections (featdrift.settings): they match the schema, and bad dicts fail in one line naming the key."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
import yaml

from featdrift.analysis.nrn import nrn_table
from featdrift.config import ConfigError, load_schema, validate
from featdrift.settings import (SECTIONS, ActivationSettings, BaseSettings, DriftSettings, EvalSettings,
                                InterveneSettings, PretrainModelSettings, SelectSettings, TrainSettings)
from helpers import ROOT

SCHEMA = load_schema(ROOT / "schemas" / "config.schema.yaml")


@pytest.fixture
def config():
    return validate(yaml.safe_load((ROOT / "config.yaml").read_text()), SCHEMA)


def _keys(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} | cls.unread


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_schema_key_is_a_field_or_left_to_the_rules(name):
    """A key added to the schema must be placed here: read by the library (a field) or by the rules (unread)."""
    props = SCHEMA["properties"][name]["properties"]
    cls = SECTIONS[name]
    assert _keys(cls) == set(props)
    for key, sub in cls.nested.items():
        assert _keys(sub) == set(props[key]["properties"])


def test_sections_hold_the_config_values(config):
    d = DriftSettings.from_config(config["drift"])
    assert d.norm == config["drift"]["norm"] and d.nrn.tail == config["drift"]["nrn"]["tail"]
    assert dataclasses.asdict(d.stabilization) == config["drift"]["stabilization"]
    i = InterveneSettings.from_config(config["intervene"])
    assert i.alphas == tuple(config["intervene"]["alphas"]) and isinstance(i.roles, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        i.n_random = 3
    assert InterveneSettings.of(i) is i


def test_rule_subsets_are_accepted():
    """Rules pass a job only the keys it reads (rules/common.smk keys())."""
    a = ActivationSettings.from_config({"shards": 2, "dtype": "float16", "batch_size": 8})
    assert a.device == "cpu"  # optional, as the capture always treated it
    assert EvalSettings.from_config({"batch_size": 4, "device": "cpu"}).limit is None
    drift = DriftSettings.from_config({"norm": "l2", "mas": {"exclusive": 0.9}})
    assert DriftSettings.of(drift, "norm", "mas") is drift


@pytest.mark.parametrize("cls,section,message", [
    (SelectSettings, {"rho": 0.2, "min_tasks": None, "batch_size": 4, "rh0": 1}, "select: unknown key 'rh0'"),
    (SelectSettings, {"rho": 0.2, "batch_size": 4}, "select: missing key 'min_tasks'"),
    (ActivationSettings, {"shards": 2, "dtype": "float16"}, "activations: missing key 'batch_size'"),
    (DriftSettings, {"nrn": {"base_specific": 0.1, "tuned_specific": 0.9, "bins": 20}}, "drift.nrn: missing key 'tail'"),
    (DriftSettings, {"nrn": {"base_specific": 0.5, "tuned_specific": 0.5, "tail": 0.9, "bins": 20}},
     "drift.nrn.base_specific: 0.5 is not below drift.nrn.tuned_specific 0.5"),
    (InterveneSettings, [2.0], "intervene: expected a mapping, got list"),
])
def test_bad_sections_fail_in_one_line_naming_the_key(cls, section, message):
    with pytest.raises(ConfigError) as e:
        cls.from_config(section)
    assert str(e.value) == message


def test_a_job_names_the_drift_part_it_lacks():
    with pytest.raises(ConfigError, match=r"^drift: missing key 'nrn'$"):
        DriftSettings.of({"norm": "l2"}, "norm", "nrn")


def test_library_functions_take_dicts_or_settings(config):
    g = torch.Generator().manual_seed(0)
    dicts = {"sft-10": (torch.rand(2, 8, 4, generator=g), ["base", "sft-10"])}
    cfg = copy.deepcopy(config["drift"])
    a = nrn_table(dicts, cfg)
    b = nrn_table(dicts, DriftSettings.from_config(cfg))
    assert a.equals(b)


def _train_params(config, run):
    """What rules/train.smk train_params passes a run."""
    other = {"sft": "rl", "rl": "sft"}[run]
    return {k: v for k, v in config["train"].items() if k not in (other, "threads", "resources")}


def _base_params(config):
    """What rules/base.smk passes the base job."""
    base = config["base"]
    out = {k: base[k] for k in ("pretrained", "trust_remote_code") if k in base}
    if "pretrain" in base:
        out["pretrain"] = {k: v for k, v in base["pretrain"].items() if k in ("model", "train", "tokenizer", "bpe_vocab")}
    return out


@pytest.mark.parametrize("run", ["sft", "rl"])
def test_a_train_rule_passes_only_its_run(config, run):
    s = TrainSettings.of(_train_params(config, run), run)
    other = {"sft": "rl", "rl": "sft"}[run]
    assert getattr(s, other) is None and getattr(s, run).lr == config["train"][run]["lr"]
    with pytest.raises(ConfigError, match=rf"^train: missing key '{other}'$"):
        TrainSettings.of(s, other)
    d = s.as_dict()  # the resume fingerprint and the launch spec: JSON round trips, then the same settings
    assert json.loads(json.dumps(d)) == d and other not in d and TrainSettings.from_config(d) == s


def test_the_base_rule_shapes_are_accepted(config):
    b = BaseSettings.of(_base_params(config))
    assert b.pretrained is None and b.pretrain.model.d_model == config["base"]["pretrain"]["model"]["d_model"]
    # The defaults build today's model: Llama, no grouped-query attention, the character tokenizer.
    assert (b.pretrain.model.family, b.pretrain.model.kv_heads, b.pretrain.tokenizer) == ("llama", b.pretrain.model.n_heads, "char")
    imported = BaseSettings.of({"pretrained": "Qwen/Qwen3-4B-Base", "trust_remote_code": False})
    assert imported.pretrain is None  # the rule passes no pretrain when the config has none
    assert PretrainModelSettings.of({"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "max_len": 64}).n_heads == 2


def _without(d, *path):
    d = copy.deepcopy(d)
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]
    return d


@pytest.mark.parametrize("edit,cls,message", [
    (lambda c: {**_train_params(c, "sft"), "warmup_steps": 1}, TrainSettings, "train: unknown key 'warmup_steps'"),
    (lambda c: _without(_train_params(c, "sft"), "epochs"), TrainSettings, "train: missing key 'epochs'"),
    (lambda c: _without(_train_params(c, "rl"), "rl", "beta"), TrainSettings, "train.rl: missing key 'beta'"),
    (lambda c: {**_train_params(c, "sft"), "sft": {**c["train"]["sft"], "num_generations": 4}}, TrainSettings,
     "train.sft: unknown key 'num_generations'"),
    (lambda c: _without(_base_params(c), "pretrain", "train"), BaseSettings, "base.pretrain: missing key 'train'"),
    (lambda c: _without(_base_params(c), "pretrain", "model", "d_ff"), BaseSettings,
     "base.pretrain.model: missing key 'd_ff'"),
    (lambda c: {**_base_params(c), "corpus": {}}, BaseSettings, "base: unknown key 'corpus'"),
    (lambda c: {"trust_remote_code": False}, BaseSettings,
     "base: set either base.pretrained (an existing model) or base.pretrain (build one)"),
])
def test_bad_train_and_base_sections_name_the_key(config, edit, cls, message):
    with pytest.raises(ConfigError) as e:
        cls.of(edit(config))
    assert str(e.value) == message
