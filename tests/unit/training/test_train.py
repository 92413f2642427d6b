"""Training set-up: the shared prompt order, rewards, and both trainers' batches."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
import yaml

from helpers import ROOT, TEST_CONFIG
from featdrift.config import load_schema, validate
from featdrift.io import read_parquet
from featdrift.models.load import load_model
from featdrift.training.rewards import correctness_reward, format_reward, parse_answer
from featdrift.training.schedule import checkpoint_steps, prompt_order


def test_prompt_order_pads_every_epoch_to_whole_batches():
    order = prompt_order(10, 4, 2, seed=0)
    assert len(order) == 2 * 12
    for epoch in (order[:12], order[12:]):
        assert set(epoch) == set(range(10)) and max(Counter(epoch).values()) <= 2
    assert order[:12] != order[12:]  # a new permutation each epoch
    assert order == prompt_order(10, 4, 2, seed=0) != prompt_order(10, 4, 2, seed=1)


def test_checkpoint_steps():
    assert checkpoint_steps(2000, 16, 1, 5) == [25, 50, 75, 100, 125]
    assert checkpoint_steps(64, 16, 1, 5) == [1, 2, 3, 4]
    assert checkpoint_steps(100, 10, 2, 2) == [5, 10, 15, 20]


def test_rewards():
    assert parse_answer("3+4=7\nAnswer: 7.") == "7"
    assert parse_answer("no answer") is None
    good, bad, junk = "1+1=2\nAnswer: 2.", "Answer: 3.", "2"
    assert correctness_reward()([good, bad, junk], answer=["2", "2", "2"]) == [1.0, 0.0, 0.0]
    assert format_reward()([good, bad, junk]) == [1.0, 1.0, 0.0]
    gsm = correctness_reward("#### (-?[0-9.,]+)")
    assert gsm(["so #### 72"], answer=["Natalia sold ... #### 72"]) == [1.0]


def _config() -> dict:
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    return validate(cfg, load_schema(ROOT / "schemas/config.schema.yaml"))


def test_sft_and_grpo_see_the_same_prompts_in_the_same_order(tiny_run, tmp_path):
    """Each optimizer step of either trainer takes the same batch_size prompts of the shared stream."""
    cfg = _config()
    train = cfg["train"]
    train["batch_size"] = 16
    train["rl"].update(num_generations=4, max_completion_length=8)
    rows = read_parquet(tiny_run / "results/data/arithmetic/train.parquet")
    stream = rows.iloc[prompt_order(len(rows), train["batch_size"], train["epochs"], 0)].reset_index(drop=True)
    model_dir = tiny_run / "results/models/base"
    from featdrift.training.grpo import grpo_trainer
    from featdrift.training.sft import sft_trainer

    b, g, steps = train["batch_size"], train["rl"]["num_generations"], len(stream) // train["batch_size"]
    model, tok = load_model(model_dir)
    sft = sft_trainer(model, tok, stream, train, 0, str(tmp_path / "sft"), steps, [])
    sft_batches = []
    for batch in sft.get_train_dataloader():
        prompts = []
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
            prompts.append(tok.decode(ids[(labels == -100) & (mask == 1)]))
        sft_batches.append(prompts)
    model, tok = load_model(model_dir)
    rl = grpo_trainer(model, tok, stream, train, 0, str(tmp_path / "rl"), steps, [])
    rl_batches = [[x["prompt"] for x in batch[::g]] for batch in rl.get_train_dataloader()]
    expected = [stream["prompt"].iloc[k * b:(k + 1) * b].tolist() for k in range(steps)]
    assert sft_batches == expected
    assert rl_batches == expected
    assert all(len(set(batch[i * g:(i + 1) * g])) == 1 for batch in
               [[x["prompt"] for x in bt] for bt in rl.get_train_dataloader()] for i in range(b))
