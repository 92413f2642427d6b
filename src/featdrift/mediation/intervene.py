"""Evaluation of edited models: the compact set and random controls of the same size, in one job per mode.

disable: the RL model with c = 0; amplify: the base model with c = alpha for every alpha, either scaling the
base's own readout of the set (intervene.amplify: readout) or adding the steering vector
c sum_k a_k W_dec,k^RL with a_k the RL model's mean pooled readout on the critical prompts (steer).
Each job loads its model once and runs lm-eval once per condition through `featdrift-steered`;
the unedited condition (c = 1, no features) runs through the same code path as the reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..dictionaries import load_dictionary
from ..evaluation.harness import run_lm_eval
from ..evaluation.steered import SteeredHFLM
from ..models.load import load_model
from ..settings import EvalSettings


def random_sets(selected: list[int], pool: list[int], n_draws: int, seed: int) -> list[list[int]]:
    """`n_draws` random sets of len(selected) features from `pool` minus the selected ones (seeded per draw).

    The pool is the features active on the critical prompts: a feature that never fires is a no-op
    to edit, so drawing from dead latents would make the control trivially null."""
    sel = set(selected)
    candidates = np.array(sorted(set(pool) - sel), dtype=np.int64)
    size = min(len(selected), len(candidates))
    return [sorted(np.random.default_rng([seed, i]).choice(candidates, size=size, replace=False).tolist())
            for i in range(n_draws)]


def conditions(mode: str, selected: list[int], controls: list[list[int]], alphas: list[float],
               magnitudes: dict[int, float] | None = None) -> list[dict]:
    """The unedited reference, then per scale the selected set and the random sets. With `magnitudes`
    (feature -> a_k) every edited condition carries its features' a_k: a steering vector, not a readout scale."""
    scales = [0.0] if mode == "disable" else [float(a) for a in alphas]
    mags = (lambda f: None) if magnitudes is None else (lambda f: [float(magnitudes[k]) for k in f])
    out = [{"set": "none", "draw": -1, "scale": 1.0, "features": [], "magnitudes": None}]
    for c in scales:
        out.append({"set": "selected", "draw": -1, "scale": c, "features": list(selected), "magnitudes": mags(selected)})
        out += [{"set": "random", "draw": i, "scale": c, "features": f, "magnitudes": mags(f)}
                for i, f in enumerate(controls)]
    return out


def steering_magnitudes(scores: pd.DataFrame) -> dict[int, float]:
    """a_k: the RL model's pooled readout of feature k on the critical prompts, averaged over the
    selection tasks (scores.parquet's fbar_rl, one row per task and feature)."""
    if scores.empty:
        return {}
    return {int(k): float(v) for k, v in scores.groupby("feature")["fbar_rl"].mean().items()}


def run_conditions(model_path: str, dict_path: str, dict_model: str, conds: list[dict], tasks: dict[str, dict],
                   include_path: str | None, eval_cfg: EvalSettings | dict, seed: int,
                   trust_remote_code: bool = False) -> pd.DataFrame:
    """Per-sample correctness (set, draw, scale, task, doc_id, correct) of every condition.

    `tasks` maps our task name -> {"lm_eval": name, "role": ...}, as in the eval stage."""
    from tqdm import tqdm

    eval_cfg = EvalSettings.of(eval_cfg)
    model, tok = load_model(model_path, trust_remote_code=trust_remote_code)
    D, _ = load_dictionary(dict_path)
    by_lm = {v["lm_eval"]: k for k, v in tasks.items()}
    frames = []
    for cond in tqdm(conds, desc=f"interventions on {model_path}", mininterval=5):
        lm = SteeredHFLM(model, dictionary=D, dict_model=dict_model, features=cond["features"], scale=cond["scale"],
                         magnitudes=cond.get("magnitudes"), tokenizer=tok, batch_size=eval_cfg.batch_size,
                         device=eval_cfg.device)
        _, samples = run_lm_eval(lm, list(by_lm), include_path, limit=eval_cfg.limit, seed=seed,
                                 gen_kwargs=eval_cfg.gen_kwargs)
        frames.append(pd.DataFrame({"set": cond["set"], "draw": cond["draw"], "scale": cond["scale"],
                                    "n_features": len(cond["features"]), "task": samples["task"].map(by_lm),
                                    "doc_id": samples["doc_id"], "correct": samples["correct"]}))
    return pd.concat(frames, ignore_index=True)
