"""The drift stage's jobs: read inputs, build the tables of the analysis modules, write tables and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..activations.store import ActivationStore
from ..dictionaries.model import load_dictionary
from ..dictionaries.split import held_out_rows
from ..io import read_parquet, write_json, write_parquet, write_text
from ..plots import bar_plot, hist_plot, line_plot
from ..settings import DriftSettings
from .claims import claims_markdown, claims_over_seeds, claims_table
from .decoders import read_decoder
from .latent_scaling import latent_betas
from .mas import exclusive_owners, mas_table, owner_counts
from .mas import with_latent_scaling as mas_with_latent_scaling
from .nrn import nrn_summary, nrn_table, specific_models, with_latent_scaling
from .preservation import model_stats, preservation_tables
from .seed_match import fired_latents, seed_match_markdown, seed_match_table
from .stabilization import stabilization_summary, stabilization_table

RUN_LABELS = {"sft": "SFT", "rl": "RL", "base": "base"}


def _pairwise_decoders(dict_dirs: dict[str, str]) -> dict:
    out = {}
    for model, path in dict_dirs.items():
        w, c = read_decoder(path)
        out[model] = (w, c["models"])
    return out


def _latent_betas(dict_dir, shards: dict[str, list[str]], specific, rows: dict):
    """Latent scaling betas of a dictionary's `specific` latents on the held-out rows of its models' shards.

    `rows` holds the `dictionaries` keys holdout_every and eval_tokens: the rows its own metrics use."""
    D, c = load_dictionary(dict_dir)
    if not (np.asarray(specific) >= 0).any():
        return latent_betas(D, [], specific)  # nothing to scale: no shard is read
    store = ActivationStore([shards[m] for m in c["models"]], c["models"])
    D.check_fits(store.d_model, ", ".join(c["models"]))
    return latent_betas(D, held_out_rows(store, rows["holdout_every"], rows["eval_tokens"]), specific)


def nrn_job(dict_dirs: dict[str, str], shards: dict[str, list[str]], rows: dict, cfg: dict, threads: int,
            out) -> dict:
    """Per-feature NRN of every pairwise crosscoder (`dict_dirs`: checkpoint -> dictionary dir), latent scaling
    of its tuned- and base-specific features on the models' activation `shards` (model -> shard paths), summary,
    plots. `rows`: the `dictionaries` keys holdout_every and eval_tokens."""
    torch.set_num_threads(threads)
    cfg = DriftSettings.of(cfg, "norm", "nrn", "latent_scaling")
    decoders = _pairwise_decoders(dict_dirs)
    table = nrn_table(decoders, cfg)
    betas = {}
    for model, (_w, models) in decoders.items():
        spec = specific_models(table.loc[table["model"] == model, "class"].to_numpy(), models)
        betas[model] = (models, *_latent_betas(dict_dirs[model], shards, spec, rows))
    table = with_latent_scaling(table, betas, cfg)
    summary = nrn_summary(table, cfg)
    write_parquet(out["features"], table, metadata={"norm": cfg.norm})
    write_parquet(out["summary"], summary, metadata={"norm": cfg.norm})
    panels = {}
    for run, g in table.groupby("run", sort=True):
        panels[f"{RUN_LABELS.get(run, run)} vs base"] = {
            f"step {s}": gs["nrn"].dropna().to_numpy() for s, gs in g.groupby("step", sort=True)}
    hist_plot(panels, out["hist"], title=f"Relative decoder norm (NRN, {cfg.norm}) of the pairwise crosscoders",
              xlabel="NRN  (0 base-specific, 0.5 shared, 1 tuned-specific)", ylabel="features",
              bins=cfg.nrn.bins, range=(0.0, 1.0), logy=True)
    line_plot(summary, "step", ["n_tuned_specific", "n_tuned_specific_scaled", "n_shared", "n_base_specific",
                                "tail_mass"], out["plot"],
              title="NRN classes per checkpoint (pairwise crosscoders)", ylabel="features", hue="run")
    final = summary.groupby("run").last()[["step", "n_tuned_specific", "n_tuned_specific_scaled", "tail_mass"]]
    return {"final": final.to_dict("index")}


def stabilization_job(nrn_path, dict_dirs: dict[str, str], cfg: dict, out) -> dict:
    """Top-k overlaps between successive checkpoints and against the final one, per run, and their plot."""
    cfg = DriftSettings.of(cfg, "stabilization")
    nrn = read_parquet(nrn_path)
    decoders = {}
    for model, (w, models) in _pairwise_decoders(dict_dirs).items():
        decoders[model] = w[[i for i, m in enumerate(models) if m != "base"][0]]
    table = stabilization_table(nrn, decoders, cfg)
    steps = {run: sorted(int(s) for s in g["step"].unique()) for run, g in nrn.groupby("run")}
    summary = stabilization_summary(table, steps, cfg)
    write_parquet(out["pairs"], table)
    write_parquet(out["summary"], summary)
    succ = table[table["kind"] == "successive"].rename(columns={"step_to": "step", "overlap": "overlap_successive"})
    fin = table[table["kind"] == "final"].rename(columns={"step_from": "step", "overlap": "overlap_with_final"})
    plot = pd.merge(succ[["run", "step", "overlap_successive"]], fin[["run", "step", "overlap_with_final"]],
                    on=["run", "step"], how="outer").sort_values(["run", "step"])
    s = cfg.stabilization
    line_plot(plot, "step", ["overlap_successive", "overlap_with_final"], out["plot"],
              title=f"Stabilization of the top-{s.k} tuned-specific features (Hungarian match, cosine >= {s.tau})",
              ylabel="overlap", hue="run")
    return {"summary": summary.set_index("run").to_dict("index")}


def mas_job(dict_dir, shards: dict[str, list[str]], rows: dict, cfg: dict, threads: int, out) -> dict:
    """MAS per feature of the three-way crosscoder, latent scaling of its exclusively owned features on the
    models' activation `shards` (model -> shard paths; `rows` as in nrn_job), owner counts, their bar plot."""
    torch.set_num_threads(threads)
    cfg = DriftSettings.of(cfg, "norm", "mas", "latent_scaling")
    w, c = read_decoder(dict_dir)
    table = mas_table(w, c["models"], cfg)
    owner = exclusive_owners(table, c["models"], cfg.mas.exclusive)
    table = mas_with_latent_scaling(table, c["models"], *_latent_betas(dict_dir, shards, owner, rows), cfg)
    owners = owner_counts(table, c["models"], cfg.mas.exclusive)
    meta = {"norm": cfg.norm, "models": json.dumps(c["models"])}
    write_parquet(out["features"], table, metadata=meta)
    write_parquet(out["owners"], owners, metadata=meta)
    bar_plot(owners["owner"].tolist(), owners["fraction"].tolist(), out["plot"],
             title=f"Owner (argmax MAS) of the three-way crosscoder's features ({', '.join(c['models'])})",
             ylabel="fraction of features", reference=owners["fraction_exclusive"].tolist(),
             reference_label=f"exclusive (MAS >= {cfg.mas.exclusive})")
    return owners.set_index("owner")[["n_features", "n_exclusive", "n_exclusive_scaled"]].to_dict("index")


def preservation_model_job(dict_dir, shards: list[str], model_dir, probe, holdout_every: int, max_tokens: int,
                           ce_sequences: int, threads: int, out, trust_remote_code: bool = False,
                           base_shards: list[str] | None = None) -> dict:
    """The base SAE on one model's activations: per-feature frequency and mean activation, FVU and CE recovered,
    and (with `base_shards`, the base model's shards of the same probe) what each feature keeps on its base contexts.

    FVU and frequencies use the held-out probe sequences (every holdout_every-th), at most max_tokens rows,
    as the dictionary stage's own metrics do; CE-loss recovered splices the SAE's reconstruction into the
    model at the dictionary's layer (0 ce_sequences skips it).
    """
    from ..dictionaries.metrics import ce_recovered

    torch.set_num_threads(threads)
    D, c = load_dictionary(dict_dir)
    if D.M != 1:
        raise ValueError(f"{dict_dir}: preservation needs a single-model SAE, this dictionary has models {c['models']}")
    paired = base_shards is not None and list(map(str, base_shards)) != list(map(str, shards))
    store = ActivationStore([base_shards, shards] if paired else [shards])  # rows checked to pair
    D.check_fits(store.d_model, store.models[-1])  # name the checkpoint, not the SAE's own model

    rows = held_out_rows(store, holdout_every, max_tokens)
    batches = ((x[:, 1], x[:, 0]) for x in rows) if paired else ((x[:, 0], None) for x in rows)
    features, metrics = model_stats(batches, lambda x: D.encode_model(0, x), lambda f: D.decode_model(0, f), D.n)
    if ce_sequences > 0:
        ce = next(iter(ce_recovered(D, [str(model_dir)], str(probe), store.layer, holdout_every, ce_sequences,
                                    trust_remote_code=trust_remote_code).values()))
        metrics.update({k: ce[k] for k in ("ce_recovered", "ce_clean", "ce_spliced", "ce_zero_ablated")})
    else:
        metrics["ce_recovered"] = None
    write_parquet(out["features"], features)
    write_json(out["metrics"], metrics)
    return metrics


def preservation_job(per_model: dict[str, tuple[str, str]], cfg: dict, out) -> dict:
    """Gather per-model base-SAE statistics (model -> (features.parquet, metrics.json)) into tables and a plot."""
    cfg = DriftSettings.of(cfg, "preservation")
    loaded = {m: (read_parquet(f), json.loads(Path(j).read_text())) for m, (f, j) in per_model.items()}
    features, summary = preservation_tables(loaded, cfg)
    write_parquet(out["features"], features)
    write_parquet(out["summary"], summary)
    base = summary[summary["run"] == "base"]
    runs = sorted(set(summary["run"]) - {"base"})
    plot = pd.concat([summary[summary["run"] != "base"]] + [base.assign(run=r) for r in runs], ignore_index=True)
    line_plot(plot.sort_values(["run", "step"]), "step", ["fvu", "ce_recovered", "n_died", "n_born"], out["plot"],
              title="Base SAE on every checkpoint (step 0 = base model)", ylabel="value", hue="run")
    return {"final": summary.groupby("run").last()[["step", "fvu", "ce_recovered", "n_died", "n_born"]].to_dict("index")}


def claims_job(per_seed: dict[int, dict[str, str]], cfg: dict, out) -> dict:
    """The three-claims table over dictionary seeds: each seed's NRN, stabilization, MAS and preservation
    summaries (seed offset -> {nrn, stabilization, mas, preservation} paths) decided alone, then together."""
    cfg = DriftSettings.of(cfg, "nrn", "mas", "stabilization", "preservation", "latent_scaling")
    tables = {s: claims_table(read_parquet(p["nrn"]), read_parquet(p["stabilization"]), read_parquet(p["mas"]),
                              read_parquet(p["preservation"]), cfg) for s, p in per_seed.items()}
    table = claims_over_seeds(tables)
    write_parquet(out["table"], table)
    seeds = ", ".join(map(str, sorted(per_seed)))
    write_text(out["markdown"], "# Does this run show the paper's three claims?\n\n"
               f"Decided over the dictionaries of seed offsets {seeds} (drift.seeds): a claim is yes (no) only when "
               "the drift tables of every seed say yes (no); how far the seeds' latents agree is in seed_match.md.\n\n"
               + claims_markdown(table))
    return table.groupby("claim", sort=False)["verdict"].first().to_dict()


def seed_match_job(dict_dirs: dict[str, dict[int, str]], shards: dict[str, list[str]], rows: dict, cfg: dict,
                   threads: int, out) -> dict:
    """Latents of each primary dictionary matched with its replicas' (`dict_dirs`: name -> seed offset -> dir),
    live latents found on the held-out rows of the models' activation `shards` (`rows` as in nrn_job)."""
    torch.set_num_threads(threads)
    cos_min = DriftSettings.of(cfg, "seed_match_cos").seed_match_cos
    replicas = {}
    for name, dirs in dict_dirs.items():
        if len(dirs) < 2:
            continue  # one seed: nothing to match, no shard is read
        loaded = {int(s): load_dictionary(d) for s, d in dirs.items()}
        models = loaded[0][1]["models"]
        for s, (_D, c) in loaded.items():
            if c["models"] != models:
                raise ValueError(f"{dirs[s]}: models {c['models']}, but the primary replica has {models}")
        store = ActivationStore([shards[m] for m in models], models)
        loaded[0][0].check_fits(store.d_model, ", ".join(models))
        dicts = [D for D, _ in loaded.values()]
        live = fired_latents(dicts, held_out_rows(store, rows["holdout_every"], rows["eval_tokens"]))
        replicas[name] = {s: (D.W_dec.detach().float(), f) for (s, (D, _)), f in zip(loaded.items(), live)}
    table = seed_match_table(replicas, cos_min)
    write_parquet(out["table"], table)
    write_text(out["markdown"], seed_match_markdown(table, cos_min))
    return {f"{r.dict} {r.seed_a}-{r.seed_b}": r.match_rate for r in table.itertuples()}
