"""The activation storage budget stops the run at DAG-build time with one line naming storage.max_bytes."""

import copy

import pytest
import yaml

from helpers import ROOT, snakemake
from featdrift.activations.budget import BudgetError, activation_bytes, check, d_model
from featdrift.config import load_schema, validate

SCHEMA = load_schema(ROOT / "schemas" / "config.schema.yaml")


def _config(**storage):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["storage"] = storage
    validate(cfg, SCHEMA)
    return cfg


def test_bytes_are_tokens_layers_models_width_dtype():
    cfg = _config()
    cfg["activations"].update(layers=[1, 2], dtype="float32")
    assert d_model(cfg) == cfg["base"]["pretrain"]["model"]["d_model"] == 128
    assert activation_bytes(cfg, 11, 128) == 100_000 * 2 * 11 * (128 * 4 + 12)
    assert check(cfg, 11) == activation_bytes(cfg, 11, 128)  # under the default 50 GB


def test_over_budget_raises_naming_the_key():
    cfg = _config(max_bytes=1_000_000)
    with pytest.raises(BudgetError, match=r"storage\.max_bytes = 0\.00 GB"):
        check(cfg, 11)
    cfg["storage"]["max_bytes"] = None
    assert check(cfg, 11) > 1_000_000


def test_pretrained_width_from_hint_or_local_config(tmp_path):
    cfg = _config(d_model=2560)
    cfg["base"]["pretrained"] = "Qwen/Qwen3-4B-Base"
    assert d_model(cfg) == 2560
    cfg = copy.deepcopy(cfg)
    cfg["storage"]["d_model"] = None
    (tmp_path / "config.json").write_text('{"hidden_size": 3584}')
    cfg["base"]["pretrained"] = str(tmp_path)
    assert d_model(cfg) == 3584
    cfg["base"]["pretrained"] = str(tmp_path / "not-downloaded")
    assert d_model(cfg) is None and check(cfg, 11) is None  # unknown width: nothing to check


def test_workflow_stops_before_any_job(tmp_path):
    proc = snakemake(tmp_path, "-n", config={"storage": {"max_bytes": 1000}}, check=False)
    assert proc.returncode != 0
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if "storage.max_bytes" in l]
    assert len(lines) == 1 and lines[0].startswith("featdrift: activations would write"), proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()
