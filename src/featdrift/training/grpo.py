"""RL: trl GRPOTrainer, reward = correctness of the parsed final answer, G generations per prompt.

GRPO batches count completions: an optimizer step takes batch_size prompts x
num_generations completions, generated once per optimizer step
(steps_per_generation = grad_accum, num_iterations = 1).
"""

from __future__ import annotations

import datasets
from trl import GRPOConfig, GRPOTrainer

from ..settings import TrainSettings
from .args import common_args, per_device
from .rewards import reward_functions


def grpo_trainer(model, tok, rows, train: TrainSettings | dict, seed: int, out_dir: str, max_steps: int, callbacks,
                 answer_regex: str | None = None) -> GRPOTrainer:
    train = TrainSettings.of(train, "rl")
    cfg = train.rl
    g = cfg.num_generations
    funcs, weights = reward_functions(cfg, answer_regex)
    args = GRPOConfig(
        **common_args(train, cfg, out_dir, seed, max_steps),
        per_device_train_batch_size=per_device(train.batch_size * g, cfg.grad_accum, "batch_size x num_generations"),
        num_generations=g,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        num_iterations=1,
        shuffle_dataset=False,
        reward_weights=weights,
    )
    ds = datasets.Dataset.from_dict({"prompt": rows["prompt"].tolist(), "answer": rows["answer"].astype(str).tolist()})
    return GRPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, reward_funcs=funcs,
                       callbacks=callbacks)
