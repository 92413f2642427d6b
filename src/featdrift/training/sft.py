"""SFT: trl SFTTrainer on prompt/completion pairs, loss on the completion tokens only."""

from __future__ import annotations

import datasets
from trl import SFTConfig, SFTTrainer

from ..settings import TrainSettings
from .args import common_args, per_device


def sft_trainer(model, tok, rows, train: TrainSettings | dict, seed: int, out_dir: str, max_steps: int,
                callbacks) -> SFTTrainer:
    """`rows`: the prompt stream (schedule.prompt_order) with prompt and completion columns."""
    train = TrainSettings.of(train, "sft")
    cfg = train.sft
    if (rows["completion"].str.len() == 0).any():
        raise ValueError("train.sft: the training data has empty completions (data.dataset.columns.completion unset?)")
    args = SFTConfig(
        **common_args(train, cfg, out_dir, seed, max_steps),
        per_device_train_batch_size=per_device(train.batch_size, cfg.grad_accum, "batch_size"),
        completion_only_loss=True,
        packing=False,
        max_length=cfg.max_length,
        shuffle_dataset=False,
        train_sampling_strategy="sequential",
    )
    ds = datasets.Dataset.from_dict({"prompt": rows["prompt"].tolist(), "completion": rows["completion"].tolist()})
    return SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=callbacks)
