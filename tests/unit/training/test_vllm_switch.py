"""train.rl.use_vllm: off by default; asked for where vLLM cannot run, the rl job stops at its start
with one line naming the key (a dry run never imports vLLM: tests/workflow/test_paper_configs.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import yaml

from helpers import ROOT, TEST_CONFIG, merged
from featdrift.config import ConfigError, load_schema, validate
from featdrift.settings import TrainSettings
from featdrift.training.grpo import vllm_args
from featdrift.training.run import train_run

VLLM_RUNS_HERE = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def _train(**rl) -> dict:
    cfg = merged(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load(TEST_CONFIG.read_text()))
    cfg = validate(merged(cfg, {"train": {"rl": rl}}), load_schema(ROOT / "schemas" / "config.schema.yaml"))
    return {k: v for k, v in cfg["train"].items() if k not in ("sft", "threads", "resources")}


def test_off_by_default():
    train = TrainSettings.of(_train(), "rl")
    assert train.rl.use_vllm is False and vllm_args(train.rl) == {}


@pytest.mark.skipif(VLLM_RUNS_HERE, reason="vLLM and CUDA are here: the switch would be honoured")
def test_requested_where_it_cannot_run_stops_the_job_before_any_model_loads(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.rl\.use_vllm: true, but .*set train\.rl\.use_vllm: false"):
        # neither the model nor the data exist: the check comes first
        train_run("rl", tmp_path / "no-model", tmp_path / "no-data.parquet", _train(use_vllm=True), [1], 0, 1,
                  tmp_path / "resume", {})
