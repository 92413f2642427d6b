"""RL: trl GRPOTrainer, reward = correctness of the parsed final answer, G generations per prompt.

GRPO batches count completions: an optimizer step takes batch_size prompts x
num_generations completions, generated once per optimizer step
(steps_per_generation = grad_accum, num_iterations = 1). With train.rl.use_vllm the completions
come from vLLM colocated in each training process (trl's colocate mode): GPU only, checked here
at job start, not when the DAG is built.
"""

from __future__ import annotations

import datasets
from trl import GRPOConfig, GRPOTrainer

from ..config import ConfigError
from ..settings import RlSettings, TrainSettings
from .args import common_args, per_device
from .rewards import reward_functions


def vllm_args(cfg: RlSettings) -> dict:
    """GRPOConfig's vLLM arguments; a one-line config error when vLLM cannot run here."""
    if not cfg.use_vllm:
        return {}
    import torch

    try:
        import vllm  # noqa: F401
    except Exception as e:  # not installed, or a build for another torch/CUDA
        why = f"vllm is not importable ({str(e).splitlines()[0] if str(e) else type(e).__name__}; pip install -e '.[vllm]')"
    else:
        why = None if torch.cuda.is_available() else "no CUDA device (vLLM generates on GPUs only)"
    if why:
        raise ConfigError(f"train.rl.use_vllm: true, but {why}; set train.rl.use_vllm: false to generate with transformers")
    return {"use_vllm": True, "vllm_mode": "colocate"}


def grpo_trainer(model, tok, rows, train: TrainSettings | dict, seed: int, out_dir: str, max_steps: int, callbacks,
                 answer_regex: str | None = None) -> GRPOTrainer:
    train = TrainSettings.of(train, "rl")
    cfg = train.rl
    vllm = vllm_args(cfg)  # before any work: the job stops at its start
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
        **vllm,
    )
    ds = datasets.Dataset.from_dict({"prompt": rows["prompt"].tolist(), "answer": rows["answer"].astype(str).tolist()})
    return GRPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, reward_funcs=funcs,
                       callbacks=callbacks)
