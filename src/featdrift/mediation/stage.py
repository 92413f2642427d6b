"""The select and intervene jobs: read inputs, call the mediation modules, write fixed-name tables and plots.

Model and lm-eval imports stay inside the jobs that need them: the effects job only reads tables."""

from __future__ import annotations

import json

import pandas as pd

from ..io import read_parquet, write_json, write_parquet, write_text
from ..settings import EvalSettings, InterveneSettings, SelectSettings
from .effects import effects_table, markdown, plot_effects


def select_job(inp, models: dict[str, str], ood_tasks: list[str], layer: int, cfg: SelectSettings | dict, threads: int,
               out, trust_remote_code: bool = False) -> dict:
    """`models`: {"base": name, "rl": name} as named in the dictionary (base and the final RL checkpoint)."""
    import torch

    from ..dictionaries import load_dictionary
    from ..models.load import load_model
    from .critical import critical_samples
    from .select import plot_selection, select

    cfg = SelectSettings.of(cfg)
    torch.set_num_threads(threads)
    critical, reverse = critical_samples(inp.base_samples, inp.rl_samples, ood_tasks)
    D, dcfg = load_dictionary(inp.dictionary)
    if dcfg.get("layer") != layer:
        raise ValueError(f"{inp.dictionary}: dictionary layer {dcfg.get('layer')} is not select.layer {layer}")
    loaded = {r: load_model(getattr(inp, f"{r}_model"), trust_remote_code=trust_remote_code) for r in ("base", "rl")}
    result = select(critical, ood_tasks, loaded, D, models, layer, cfg.rho, cfg.min_tasks, cfg.batch_size)
    for task, n in reverse.items():
        result["tasks"][task]["n_reverse"] = n
    write_parquet(out.critical, critical)
    write_parquet(out.scores, result["scores"])
    write_parquet(out.features, result["features"])
    write_parquet(out.overlap, result["overlap"])
    summary = {"dictionary": dcfg.get("name"), "layer": layer, "models": models, "rho": cfg.rho,
               "min_tasks": result["min_tasks"], "tasks": result["tasks"], "tasks_used": result["tasks_used"],
               "compact_set": result["compact"], "compact_size": len(result["compact"]),
               "per_task_sets": {t: sorted(s) for t, s in result["sets"].items()},
               "active": result["active"]}
    write_json(out.summary, summary)
    plot_selection(result, out.plot)
    return {"compact_size": len(result["compact"]), "tasks": result["tasks"]}


def intervene_job(mode: str, inp, dict_model: str, tasks: dict[str, dict], include_path, eval_cfg: EvalSettings | dict,
                  cfg: InterveneSettings | dict, seed: int, threads: int, out, trust_remote_code: bool = False) -> dict:
    """mode disable: the RL model, c = 0; amplify: the base model, c = every alpha, on its own readout or
    (intervene.amplify: steer) by RL's steering vector, with `dict_model` the RL model and `inp.scores` read."""
    import torch

    from .intervene import conditions, random_sets, run_conditions, steering_magnitudes

    cfg, eval_cfg = InterveneSettings.of(cfg), EvalSettings.of(eval_cfg)
    torch.set_num_threads(threads)
    sel = json.loads(open(inp.selection).read())
    selected = sel["compact_set"]
    edit = cfg.amplify if mode == "amplify" else "readout"
    pool = sel["active"]["base" if edit == "readout" and mode == "amplify" else "rl"]
    controls = random_sets(selected, pool, cfg.n_random, seed) if selected else []
    mags = steering_magnitudes(read_parquet(inp.scores)) if edit == "steer" else None
    conds = conditions(mode, selected, controls, cfg.alphas, mags) if selected else conditions(mode, [], [], [])[:1]
    samples = run_conditions(inp.model, inp.dictionary, dict_model, conds, tasks, include_path, eval_cfg, seed,
                             trust_remote_code)
    critical = read_parquet(inp.critical)
    effects = effects_table(samples, tasks, critical, cfg.roles, mode, cfg.bootstrap, cfg.confidence, seed)
    write_parquet(out.samples, samples, metadata={"mode": mode, "dict_model": dict_model, "edit": edit})
    write_parquet(out.effects, effects.assign(edit=edit))
    edited = sorted(set(selected).union(*map(set, controls)))
    write_json(out.sets, {"mode": mode, "edit": edit, "selected": selected, "random": controls,
                          "scales": sorted({c["scale"] for c in conds}),
                          "magnitudes": None if mags is None else {str(k): mags[k] for k in edited}})
    return {"conditions": len(conds), "n_selected": len(selected), "edit": edit}


def effects_job(effect_files: list[str], confidence: float, out) -> pd.DataFrame:
    effects = pd.concat([read_parquet(f) for f in effect_files], ignore_index=True)
    write_parquet(out.table, effects)
    text = markdown(effects, confidence) if len(effects) else "The compact set is empty: nothing was edited.\n"
    write_text(out.markdown, text)
    plot_effects(effects, out.plot, confidence)
    return effects
