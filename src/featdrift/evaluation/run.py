"""The eval stage of one model: lm-eval on every configured task, fixed-name outputs."""

from __future__ import annotations

from ..io import write_json, write_parquet
from ..models.load import load_model
from ..plots import bar_plot
from ..settings import EvalSettings
from .harness import accuracy, make_hflm, run_lm_eval


def evaluate_model(model_name: str, model_dir, tasks: dict[str, dict], include_path: str | None,
                   eval_cfg: EvalSettings | dict, seed: int, threads: int, out: dict,
                   trust_remote_code: bool = False) -> dict[str, float]:
    """`tasks` maps our name -> {"lm_eval": name, "role": in_domain|ood|heldout}.

    Writes `out["per_task"][i]` (lm-eval metrics of task i), `out["samples"]`,
    `out["summary"]` (accuracy and chance per task) and `out["plot"]`.
    """
    import torch

    eval_cfg = EvalSettings.of(eval_cfg)
    torch.set_num_threads(threads)
    model, tok = load_model(model_dir, trust_remote_code=trust_remote_code)
    names = list(tasks)
    lm_names = [tasks[n]["lm_eval"] for n in names]
    lm = make_hflm(model, tok, batch_size=eval_cfg.batch_size, device=eval_cfg.device)
    results, samples = run_lm_eval(lm, lm_names, include_path, limit=eval_cfg.limit, seed=seed,
                                   gen_kwargs=eval_cfg.gen_kwargs)
    by_lm = dict(zip(lm_names, names))
    samples["task"] = samples["task"].map(by_lm)
    acc = {by_lm[k]: v for k, v in accuracy(results).items()}
    chance = {n: (float((1.0 / g["n_choices"]).mean()) if g["n_choices"].notna().all() else 0.0)
              for n, g in samples.groupby("task", sort=False)}
    for path, name in zip(out["per_task"], names):
        write_json(path, {"task": name, "lm_eval_task": tasks[name]["lm_eval"], "role": tasks[name]["role"],
                          "metrics": results[tasks[name]["lm_eval"]], "n": int((samples["task"] == name).sum())})
    write_parquet(out["samples"], samples)
    summary = {n: {"role": tasks[n]["role"], "accuracy": acc[n], "chance": chance[n]} for n in names}
    write_json(out["summary"], summary)
    bar_plot(names, [acc[n] for n in names], out["plot"], title=f"Accuracy of {model_name} per task",
             ylabel="accuracy (exact match / acc)", reference=[chance[n] for n in names])
    return acc
