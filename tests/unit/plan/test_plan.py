"""featdrift plan: the paper configs planned without a download, its counts against the models they
describe, and its activation-store bytes shared with the disk budget guard."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from helpers import ROOT, TEST_CONFIG
from featdrift import plan as P
from featdrift.activations import budget

PAPER = ["qwen3-4b", "qwen2.5-7b", "llama3.1-8b"]
REPORTED_PARAMS = {"qwen3-4b": 4.02e9, "qwen2.5-7b": 7.61e9, "llama3.1-8b": 8.03e9}  # the model cards' sizes
STAGES = ["base import", "SFT", "GRPO", "eval", "probe capture", "dictionaries", "drift", "selection", "interventions"]


def _bench():
    spec = importlib.util.spec_from_file_location("plan_constants", ROOT / "benchmarks" / "plan_constants.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", PAPER)
def test_paper_config_plans_without_download(name):
    cfg = P.load_config([ROOT / "configs" / f"{name}.yaml"])
    p = P.plan(cfg)
    stages = {s["name"]: s for s in p["stages"]}
    assert list(stages) == STAGES
    assert p["card"]["params"] == pytest.approx(REPORTED_PARAMS[name], rel=0.005)
    assert p["card"]["source"] == "featdrift.plan.KNOWN" and not p["assumed_tasks"]
    # AIME asks for up to 32,768 new tokens, which lm-eval refuses for a model of 32,768 positions: the
    # configs cap built-in generations (eval.builtin_max_gen_toks); without the cap the plan warns
    assert p["warnings"] == [] and cfg["eval"]["builtin_max_gen_toks"] == 8192
    uncapped = P.plan({**cfg, "eval": {**cfg["eval"], "builtin_max_gen_toks": None}})
    assert [w.split(":")[0] for w in uncapped["warnings"]] == (["aime24", "aime25"] if name == "qwen3-4b" else [])
    t = p["totals"]
    assert t["jobs"] == sum(s["jobs"] for s in p["stages"]) and t["gpu_hours"] > 0 and t["disk_bytes"] > 0
    assert 100 < t["gpu_hours"] < 10_000 and 1e11 < t["disk_bytes"] < 1e13  # hundreds of GPU-hours, ~0.1-1 TB
    for s in ("SFT", "GRPO", "eval", "dictionaries", "interventions"):
        assert stages[s]["gpu_hours"] > 0.5, s
    # the generation of 8 x 47K completions outweighs SFT on the same prompts
    assert stages["GRPO"]["gpu_hours"] > 5 * stages["SFT"]["gpu_hours"]

    # dictionaries: 32768 latents x d x M models, float32; on disk the weights of every dictionary
    # (sae-base, one pairwise per checkpoint, cc3) per seed, on the GPU weights + gradients + Adam
    n, d, N = 32768, p["card"]["d_model"], p["card"]["params"]
    models = 1 + 2 * len(P.checkpoint_steps(cfg))
    params = {M: 2 * n * d * M + n + M * d for M in (1, 2, 3)}
    weights = sum(4 * params[M] for M in [1] + [2] * (models - 1) + [3])
    assert stages["dictionaries"]["disk_bytes"] == len(cfg["drift"]["seeds"]) * weights + 4 * params[1]  # + SAELens export
    # cc3 on the GPU: 16 bytes a parameter, beside its three models in bf16 (the online source)
    assert stages["dictionaries"]["peak_gpu_bytes"] == 4 * (1 + 1 + 2) * params[3] + 3 * N * 2

    # one formula for the activation store: the disk budget guard checks the plan's bytes
    assert budget.activation_bytes is P.store_bytes
    assert stages["probe capture"]["disk_bytes"] == budget.check(cfg, models)


def test_tiny_plan_and_cli(capsys):
    P.main(["--configfile", str(TEST_CONFIG), "--json"])
    p = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in p["stages"]][0] == "base pretrain" and p["totals"]["jobs"] > 0
    P.main(["--configfile", str(TEST_CONFIG)])
    out = capsys.readouterr().out
    assert "\ntotal " in out and "dictionaries" in out


def test_unknown_model_is_one_line():
    cfg = P.load_config([TEST_CONFIG])
    cfg["base"]["pretrained"] = "someone/not-a-known-model"
    with pytest.raises(P.ConfigError, match=r"^base\.pretrained: the shape of 'someone/not-a-known-model' is unknown"):
        P.plan(cfg)
    assert P.width(cfg) is None


@pytest.mark.parametrize("family", ["llama", "llama3", "qwen2", "qwen3"])
def test_tiny_card_counts_the_built_model(family):
    from featdrift.models.build import tiny_model
    from featdrift.models.tokenizer import char_tokenizer

    cfg = P.load_config([TEST_CONFIG])
    m = {**cfg["base"]["pretrain"]["model"], "family": family, "n_heads": 4, "n_kv_heads": 2}
    cfg["base"]["pretrain"]["model"] = m
    built = tiny_model(m, char_tokenizer(m["max_len"]))
    assert P.model_card(cfg).params == sum(p.numel() for p in built.parameters())


def test_known_cards_count_the_hub_architectures():
    """The paper's models built on the meta device (no weights, no download) from KNOWN."""
    bench = _bench()
    for name in P.KNOWN:
        card = P.card_from_hf(*P.hf_config(name))
        assert sum(p.numel() for p in bench.build(card, "meta").parameters()) == card.params, name


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("bf16", [True, False])
def test_activation_constants_reproduce_a_measurement(family, bf16):
    """A shape the fit never saw (benchmarks/plan_constants.py measures the rest)."""
    torch.manual_seed(0)
    card = P.Card(family, 72, 3, 176, 6, 2, 12, 416, True)
    measured = _bench().act_bytes_per_token(card, bf16, checkpointing=False)
    assert card.act_bytes(bf16, False) == pytest.approx(measured, rel=0.01)
