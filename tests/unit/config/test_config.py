"""Every bad config stops the run before any job, with one line naming the key path."""

import copy

import pytest
import yaml

from helpers import ROOT, snakemake
from featdrift.config import ConfigError, load_schema, validate

SCHEMA = load_schema(ROOT / "schemas" / "config.schema.yaml")
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def _merged(patch: dict) -> dict:
    cfg = copy.deepcopy(DEFAULT)

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v

    merge(cfg, patch)
    return cfg


BAD = [
    ({"data": {"n_test": "ten"}}, "data.n_test: 'ten' is not of type 'integer'"),
    ({"data": {"shuffle": True}}, "data: unknown key 'shuffle'"),
    ({"base": {"pretrain": {"train": {"lr": 5}}}}, "base.pretrain.train.lr: 5 is greater than the maximum of 1"),
    ({"data": {"n_train": 0}}, "data.n_train: 0 is less than the minimum of 1"),
    ({"data": {"ood_tasks": ["compare", "tarot"]}}, "data.ood_tasks[1]: unknown out-of-domain task 'tarot'"),
    ({"data": {"ood_tasks": ["compare"], "heldout_tasks": ["compare"]}},
     "data.heldout_tasks[0]: task 'compare' is already listed in data.ood_tasks"),
    ({"data": {"test_sizes": {"tarot": 500}}}, "data.test_sizes.tarot: unknown task 'tarot'"),
    ({"data": {"test_sizes": {"arithmetic": 500}}}, "data.test_sizes.arithmetic: the in-domain test size is data.n_test"),
    ({"data": {"test_sizes": {"calculate": 0}}}, "data.test_sizes.calculate: 0 is less than the minimum of 1"),
    ({"base": {"pretrained": "./no/such/model"}}, "base.pretrained: model directory not found: ./no/such/model"),
    ({"data": {"source": "dataset", "dataset": {"path": "parquet", "data_files": "nope.parquet",
                                                "columns": {"prompt": "q", "answer": "a"}}}},
     "data.dataset.data_files: file not found: nope.parquet"),
    ({"base": {"pretrain": {"model": {"n_heads": 3}}}}, "base.pretrain.model.n_heads: 3 does not divide d_model 128"),
    # Checks that jobs used to make late (the drift, capture, dictionary and training jobs).
    ({"drift": {"nrn": {"base_specific": 0.95}}}, "drift.nrn.base_specific: 0.95 is not below drift.nrn.tuned_specific 0.75"),
    ({"activations": {"layers": [2, 4]}}, "activations.layers[1]: layer 4 out of range (base.pretrain.model.n_layers is 4)"),
    ({"dictionaries": {"k": 512}}, "dictionaries.k: 512 is not below dictionaries.n_latents 512"),
    ({"train": {"sft": {"grad_accum": 3}}},
     "train.batch_size: 8 is not divisible by train.sft.grad_accum x train.num_processes = 3"),
    ({"train": {"rl": {"grad_accum": 5}}},
     "train.batch_size: 8 x train.rl.num_generations = 48 is not divisible by train.rl.grad_accum x train.num_processes = 5"),
    ({"drift": {"seeds": [1, 2]}}, "drift.seeds: [1, 2] lacks 0, the primary dictionaries' seed offset"),
    ({"drift": {"seeds": [0, 1, 1]}}, "drift.seeds: [0, 1, 1] has non-unique elements"),
    ({"data": {"ood_tasks": ["arithmetic"]}}, "data.ood_tasks[0]: unknown out-of-domain task 'arithmetic'"),
    ({"base": {"pretrain": {"model": {"n_kv_heads": 3}}}}, "base.pretrain.model.n_kv_heads: 3 does not divide n_heads 4"),
    ({"base": {"pretrain": {"model": {"family": "gpt2"}}}}, "base.pretrain.model.family: 'gpt2' is not one of"),
    ({"calibration": {"causal": {"task": "cue"}}}, "calibration.causal.task: 'cue' is not one of data.ood_tasks"),
]


@pytest.mark.parametrize("patch,message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_config_message(patch, message, tmp_path):
    with pytest.raises(ConfigError) as e:
        validate(_merged(patch), SCHEMA, base_dir=tmp_path)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = validate(copy.deepcopy(DEFAULT), SCHEMA)
    assert cfg["eval"]["device"] == "cpu" and cfg["base"]["trust_remote_code"] is False
    assert cfg["data"]["dataset"] is None


@pytest.mark.parametrize("patch,message", [BAD[0], BAD[1], BAD[4], BAD[6], BAD[9]],
                         ids=["type", "unknown-key", "task", "missing-file", "drift-thresholds"])
def test_workflow_stops_before_any_job_with_one_line(tmp_path, patch, message):
    proc = snakemake(tmp_path, "-n", config=patch, check=False)
    assert proc.returncode != 0
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("featdrift:")]
    assert ours == [f"featdrift: config error: {message}"] or (len(ours) == 1 and ours[0].startswith(f"featdrift: config error: {message}"))
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_key_order_of_config_files_does_not_matter():
    a = validate(_merged({}), SCHEMA)
    shuffled = {k: DEFAULT[k] for k in reversed(list(DEFAULT))}
    shuffled["base"] = {k: DEFAULT["base"][k] for k in reversed(list(DEFAULT["base"]))}
    b = validate(copy.deepcopy(shuffled), SCHEMA)
    assert list(a) == list(b) and list(a["base"]) == list(b["base"]) and a == b
