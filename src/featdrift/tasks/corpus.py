"""The generated pretraining corpus: every task family in its text form plus generic filler."""

from __future__ import annotations

import pandas as pd

from .registry import IN_DOMAIN, TASKS, draw_unique, rng_for
from . import world


def as_text(task: str, item: dict) -> str:
    if TASKS[task].kind == "generate":
        return item["prompt"] + item["completion"]
    return f"{item['question']} {item['answer']}."


def build_corpus(cfg: dict, seed: int, exclude_prompts: set[str], task_params: dict) -> pd.DataFrame:
    """`cfg["n_docs"]` documents: a `cfg["mix"]` share each of in-domain, multiple-choice and generic text.

    The in-domain generator takes `cfg["in_domain_params"]` over the task's own
    parameters, so the base can learn the steps without the full task.

    In-domain train and test prompts are excluded: base accuracy measures a skill, not recall,
    and SFT/RL train on prompts the base has never seen.
    """
    n_docs, mix = cfg["n_docs"], cfg["mix"]
    task_params = {**task_params, IN_DOMAIN: {**task_params.get(IN_DOMAIN, {}), **cfg.get("in_domain_params", {})}}
    total = sum(mix.values())
    n_in = round(n_docs * mix["in_domain"] / total)
    n_mc = round(n_docs * mix["choice"] / total)
    n_gen = n_docs - n_in - n_mc
    mc_tasks = [t for t, s in TASKS.items() if s.kind == "choice"]
    docs = [as_text(IN_DOMAIN, it) for it in draw_unique(IN_DOMAIN, seed, n_in, exclude_prompts, task_params.get(IN_DOMAIN), stream="corpus")]
    per = [n_mc // len(mc_tasks) + (i < n_mc % len(mc_tasks)) for i in range(len(mc_tasks))]
    for t, n in zip(mc_tasks, per):
        rng = rng_for(seed, "corpus", t)
        docs += [as_text(t, TASKS[t].make(rng, **task_params.get(t, {}))) for _ in range(n)]
    rng = rng_for(seed, "corpus", "generic")
    docs += [world.generic(rng)["text"] for _ in range(n_gen)]
    rng_for(seed, "corpus", "order").shuffle(docs)
    return pd.DataFrame({"text": docs})
