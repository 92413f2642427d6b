"""Which task families exist, what role each plays, and how their items are drawn."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable

from . import world

IN_DOMAIN = "arithmetic"


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "generate" (worked solution + final answer) or "choice"
    make: Callable[..., dict]
    corpus: bool = True  # whether the pretraining corpus has its items (the calibration's cue task has not)

    @property
    def lm_eval_name(self) -> str:
        # Prefixed so that no synthetic task shadows an lm-eval built-in (lm-eval has "arithmetic").
        return f"fd_{self.name}"


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("arithmetic", "generate", world.arithmetic),
        Task("chain", "generate", world.chain),
        Task("spelled", "generate", world.spelled),
        Task("calculate", "generate", world.calculate),
        Task("compute_colon", "generate", world.compute_colon),
        Task("compare", "choice", world.compare),
        Task("successor", "choice", world.successor),
        Task("predecessor", "choice", world.predecessor),
        Task("parity", "choice", world.parity),
        Task("digits", "choice", world.digits),
        Task("minimum", "choice", world.minimum),
        Task("words", "choice", world.words),
        Task("sum_check", "choice", world.sum_check),
        Task("cue", "choice", world.cue, corpus=False),
    ]
}


def rng_for(seed: int, *names: str) -> random.Random:
    """An RNG per (seed, stream) so that adding a task never shifts another task's items."""
    digest = hashlib.sha256(":".join([str(seed), *names]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def key_of(item: dict) -> str:
    return item.get("prompt") or item["question"]


def draw_unique(task: str, seed: int, n: int, exclude: set[str] = frozenset(), params: dict | None = None,
                stream: str = "data") -> list[dict]:
    """n distinct items of `task` (distinct by prompt), in a deterministic order.

    Small spaces (for example parity of 0..99) cannot hold n distinct items; then
    items repeat, since a test set of several hundred is still wanted for tight
    accuracy estimates, and repeated prompts weigh the same as in the population.
    """
    rng = rng_for(seed, stream, task)
    make = TASKS[task].make
    params = params or {}
    items, seen, tries = [], set(), 0
    while len(items) < n:
        item = make(rng, **params)
        k = key_of(item)
        tries += 1
        if k in exclude:
            if tries > 50 * n:
                raise ValueError(f"task {task!r}: cannot draw {n} items outside the excluded set")
            continue
        if k in seen and tries <= 20 * n:
            continue
        seen.add(k)
        items.append(item)
    return items
