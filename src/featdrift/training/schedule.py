"""The one prompt order and step grid that both runs share.

Both trainers are told not to shuffle (SFT: `train_sampling_strategy="sequential"`,
`shuffle_dataset=False`; GRPO: `shuffle_dataset=False`, which makes trl's
RepeatSampler walk the dataset in order, each prompt repeated `num_generations`
times in a row). The order is fixed here instead, before either trainer sees the
data: every epoch is its own seeded permutation of the training prompts, padded
by wrapping to a whole number of batches (GRPO's RepeatSampler would drop a
partial last batch, SFT's sampler would keep it; padding makes both identical).
The epochs are concatenated into one stream and each trainer runs a single pass
over it, so optimizer step k of either run uses stream rows [k*B, (k+1)*B).
"""

from __future__ import annotations


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


def total_steps(n_train: int, batch_size: int, epochs: int) -> int:
    return steps_per_epoch(n_train, batch_size) * epochs


def checkpoint_steps(n_train: int, batch_size: int, epochs: int, per_epoch: int) -> list[int]:
    """Every 1/per_epoch of an epoch; the last one is the final step."""
    total = total_steps(n_train, batch_size, epochs)
    n = per_epoch * epochs
    return sorted({max(1, round(total * k / n)) for k in range(1, n + 1)})


def prompt_order(n_train: int, batch_size: int, epochs: int, seed: int) -> list[int]:
    """Row indices of the training prompts in the order both runs consume them."""
    import numpy as np  # here: the Snakefile imports this module (checkpoint_steps) at parse time

    per_epoch = steps_per_epoch(n_train, batch_size) * batch_size
    order = []
    for epoch in range(epochs):
        perm = np.random.default_rng([seed, epoch]).permutation(n_train)
        order.extend(np.resize(perm, per_epoch).tolist())  # wraps around to fill the last batch
    return order
