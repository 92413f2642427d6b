"""TrainingArguments both runs share, so that only the objective and its settings differ."""

from __future__ import annotations

import os

import torch

from ..settings import RlSettings, SftSettings, TrainSettings


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_device(batch: int, grad_accum: int, what: str) -> int:
    n = grad_accum * world_size()
    if batch % n:
        raise ValueError(f"train: {what} {batch} is not divisible by grad_accum x processes = {n}")
    return batch // n


def common_args(train: TrainSettings, run_cfg: SftSettings | RlSettings, out_dir: str, seed: int,
                max_steps: int) -> dict:
    return dict(
        output_dir=out_dir,
        gradient_checkpointing=train.gradient_checkpointing,  # trl's configs default to True
        max_steps=max_steps,
        learning_rate=run_cfg.lr,
        gradient_accumulation_steps=run_cfg.grad_accum,
        lr_scheduler_type=train.lr_scheduler,
        warmup_steps=train.warmup_ratio,
        weight_decay=train.weight_decay,
        max_grad_norm=train.max_grad_norm,
        bf16=train.bf16,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="no",  # the CheckpointCallback saves at exactly the configured steps
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
    )
