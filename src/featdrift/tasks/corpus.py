"""The generated pretraining corpus: every task family in its text form plus generic filler."""

from __future__ import annotations

import pandas as pd

from .registry import IN_DOMAIN, TASKS, draw_unique, rng_for
from . import world


def as_text(task: str, item: dict, direct: bool = False) -> str:
    """A document; `direct` writes an in-domain item with its final line only (no working)."""
    if TASKS[task].kind == "generate":
        return item["prompt"] + (item["completion"].splitlines()[-1] if direct else item["completion"])
    return f"{item['question']} {item['answer']}."


def step_facts(rng, n: int, params: dict) -> list[str]:
    """`n` one-line facts such as `17-4=13`, drawn as the worked lines of fresh in-domain items.

    They follow the operand distribution of every step of a worked solution, so a
    base that reads them computes each step well; this is what makes worked answers
    far more accurate than direct ones, and gives RL a reward gradient towards them.
    """
    out: list[str] = []
    while len(out) < n:
        lines = world.arithmetic(rng, **params)["completion"].splitlines()[:-1]
        out += lines[: n - len(out)]
    return out


def build_corpus(cfg: dict, seed: int, exclude_prompts: set[str], task_params: dict) -> pd.DataFrame:
    """`cfg["n_docs"]` documents: a `cfg["mix"]` share each of in-domain, step facts, multiple-choice and generic text.

    The in-domain generator takes `cfg["in_domain_params"]` over the task's own
    parameters, and a `cfg["direct_share"]` of in-domain documents give the answer
    without working: the base then mostly answers directly (and often wrongly),
    while worked answers, which it can also produce, are what SFT teaches and RL
    can find by sampling and reinforce. An optional `mix["facts"]` share is
    one-line step facts (`step_facts`), drawn with the same parameters.

    In-domain train and test prompts are excluded: base accuracy measures a skill, not recall,
    and SFT/RL train on prompts the base has never seen.
    """
    n_docs, mix = cfg["n_docs"], cfg["mix"]
    task_params = {**task_params, IN_DOMAIN: {**task_params.get(IN_DOMAIN, {}), **cfg.get("in_domain_params", {})}}
    total = sum(mix.values())
    n_in = round(n_docs * mix["in_domain"] / total)
    n_mc = round(n_docs * mix["choice"] / total)
    n_facts = round(n_docs * mix.get("facts", 0.0) / total)
    n_gen = n_docs - n_in - n_mc - n_facts
    mc_tasks = [t for t, s in TASKS.items() if s.kind == "choice" and s.corpus]
    items = draw_unique(IN_DOMAIN, seed, n_in, exclude_prompts, task_params.get(IN_DOMAIN), stream="corpus")
    n_direct = round(n_in * cfg.get("direct_share", 0.0))
    docs = [as_text(IN_DOMAIN, it, direct=i < n_direct) for i, it in enumerate(items)]
    per = [n_mc // len(mc_tasks) + (i < n_mc % len(mc_tasks)) for i in range(len(mc_tasks))]
    for t, n in zip(mc_tasks, per):
        rng = rng_for(seed, "corpus", t)
        docs += [as_text(t, TASKS[t].make(rng, **task_params.get(t, {}))) for _ in range(n)]
    docs += step_facts(rng_for(seed, "corpus", "facts"), n_facts, task_params.get(IN_DOMAIN, {}))
    rng = rng_for(seed, "corpus", "generic")
    docs += [world.generic(rng)["text"] for _ in range(n_gen)]
    rng_for(seed, "corpus", "order").shuffle(docs)
    return pd.DataFrame({"text": docs})
