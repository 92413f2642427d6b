"""The calibration stage's jobs: plant the series, then score the drift stage on them."""

from __future__ import annotations

import json
import math

import pandas as pd
import torch

from ..analysis.decoders import read_decoder
from ..io import read_parquet, write_json, write_text
from ..mediation.effects import edit_label
from . import recovery as R

# The acceptance bar of the NRN instrument (issue 13): recall and false-positive rate.
NRN_RECALL, NRN_FPR = 0.9, 0.05
# NRN thresholds the recovery table also scores (the configured one is drift.nrn.tuned_specific).
SWEEP = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def plant_job(model_dir: str, probe_path: str, layer: int, cfg: dict, steps: list[int], seed: int, threads: int,
              out, causal_items: str | None = None) -> dict:
    """Write the planted base and checkpoints and the ground truth; return its measured figures.
    `causal_items`: the cue task's training split, where cfg["causal"] plants the causal feature."""
    from ..activations.probe import read_probe
    from ..determinism import set_determinism
    from ..models.load import load_model
    from ..tasks.build import load_split
    from .plant import plant_series, write_series

    set_determinism(threads)
    model, tok = load_model(model_dir)
    probe, _ = read_probe(probe_path)
    items = load_split(causal_items).to_dict("records") if causal_items else None
    models, truth = plant_series(model, tok, probe.column("token_ids").to_pylist(), layer, cfg, steps, seed,
                                 sources=probe.column("source").to_pylist(), causal_items=items)
    dirs = {"base": out["base"]}
    for run in ("sft", "rl"):
        dirs.update({f"{run}-{s}": p for s, p in zip(steps, out[run])})
    write_series(models, tok, truth, dirs, out["truth"], out["directions"])
    return truth["measured"]


def _load_planted(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v.double() for k, v in load_file(str(path)).items()}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "n/a"}[v]
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3g}"
    return str(v)


def recovery_job(inp, pairwise_dirs: dict[str, str], cc3_dir: str, sae_dir: str, drift: dict, match_cos: float,
                 out, select_dir: str | None = None) -> dict:
    """recovery.json and recovery.md: per instrument, recall of the plant and false positives.
    `select_dir`: the selection's dictionary, where a causal feature was planted (inp.causal then
    holds selection.json and the interventions' effects.parquet)."""
    truth = json.loads(open(inp["truth"]).read())
    planted = _load_planted(inp["directions"])
    nrn = read_parquet(inp["nrn"])
    decoders = {}
    for model, path in pairwise_dirs.items():
        w, c = read_decoder(path)
        decoders[model] = (w.double(), c["models"])
    strengths = [f["strength"] for f in truth["features"]]
    feats, fps, unplanted_nrn = R.nrn_recovery(nrn, decoders, planted, strengths, match_cos)
    sweep = R.threshold_sweep(feats, unplanted_nrn, SWEEP)
    tuned = feats[feats["expected"] == "tuned_specific"]
    base_sp = feats[feats["expected"] == "base_specific"]
    shared = feats[feats["expected"] == "shared"]
    nrn_out = {
        "tuned_specific_recall": float(tuned["recovered"].mean()) if len(tuned) else math.nan,
        "tuned_specific_scaled_recall": float(tuned["recovered_scaled"].mean()) if len(tuned) else math.nan,
        "fpr_tuned_specific_scaled": float(fps["n_tuned_specific_scaled"].sum() / max(fps["n_unplanted"].sum(), 1)),
        "base_specific_recall": float(base_sp["recovered"].mean()) if len(base_sp) else math.nan,
        "shared_recall": float(shared["recovered"].mean()) if len(shared) else math.nan,
        "fpr_tuned_specific": float(fps["n_tuned_specific"].sum() / max(fps["n_unplanted"].sum(), 1)),
        "fpr_base_specific": float(fps["n_base_specific"].sum() / max(fps["n_unplanted"].sum(), 1)),
        "per_run": {run: {"tuned_specific_recall": float(g["recovered"].mean()), "n": int(len(g))}
                    for run, g in tuned.groupby("run")},
        "per_strength": {float(s): {"tuned_specific_recall": float(g["recovered"].mean()), "n": int(len(g)),
                                    "mean_best_cos": float(g["best_cos"].mean()),
                                    "represented": float((g["change_cos"] >= match_cos).mean())}
                         for s, g in tuned.groupby("strength")},
        # the dictionary holds the planted change (a latent's decoder difference at >= match_cos), whatever NRN calls it
        "tuned_specific_represented": float((tuned["change_cos"] >= match_cos).mean()) if len(tuned) else math.nan,
        "mean_best_cos": float(feats["best_cos"].mean()),
        "threshold": drift["nrn"]["tuned_specific"],
        "sweep": sweep.to_dict("records"),
    }
    nrn_out["pass"] = bool(nrn_out["tuned_specific_recall"] >= NRN_RECALL and nrn_out["fpr_tuned_specific"] <= NRN_FPR)

    w3, c3 = read_decoder(cc3_dir)
    mas = read_parquet(inp["mas"])
    mas_out = R.mas_recovery(mas, w3.double(), c3["models"], planted, match_cos, drift["mas"]["exclusive"])

    st = drift["stabilization"]
    stab = read_parquet(inp["stabilization"]).set_index("run")
    steps = {run: sorted(int(s) for s in g["step"].unique()) for run, g in nrn.groupby("run")}
    truth_stab = R.true_stabilization(planted, steps, st["tau"], st["stable_overlap"])
    stab_out = {run: {"planted_stable_step": t["stable_step"], "measured_stable_step": int(stab.loc[run, "stable_step"]),
                      "recovered": t["stable_step"] == int(stab.loc[run, "stable_step"])}
                for run, t in truth_stab.items()}

    w_sae, _ = read_decoder(sae_dir)
    pres = R.preservation_recovery(read_parquet(inp["preservation"]), w_sae.double(), planted, match_cos)
    removed = pres[pres["n_removed"] > 0]
    n_un = max(pres["unplanted"].sum(), 1)
    pres_out = {f"{c}_recall": float(removed[f"n_{c}_found"].sum() / max(removed["n_removed"].sum(), 1))
                if len(removed) else math.nan for c in ("died", "weakened")}
    pres_out.update({f"fpr_{c}": float(pres[f"unplanted_{c}"].sum() / n_un)
                     for c in ("died", "born", "weakened", "strengthened")})
    pres_out["schedule"] = pres[["model", "n_removed", "n_removed_resolved", "n_died_found", "n_weakened_found",
                                 "n_kept_died", "n_kept_weakened"]].to_dict("records")
    # on schedule: every removed feature (of those counted in `n`) found from its removal on, and no planted
    # base feature found before it
    def on_schedule(n: str) -> dict[str, bool]:
        return {c: bool(((pres[n] == pres[f"n_{c}_found"]) & (pres[f"n_kept_{c}"] == 0)).all())
                for c in ("died", "weakened")}

    pres_out["schedule_recovered"] = on_schedule("n_removed")
    pres_out["schedule_recovered_resolved"] = on_schedule("n_removed_resolved")
    pres_out["removed_resolved"] = int(removed["n_removed_resolved"].max()) if len(removed) else 0

    claims = read_parquet(inp["claims"]).drop_duplicates("claim").set_index("claim")["verdict"].to_dict()
    expected = R.planted_claims(truth["features"], truth_stab)
    claims_out = {c: {"planted": e, "measured": claims.get(c), "recovered": claims.get(c) == e} for c, e in expected.items()}

    causal = [f for f in truth["features"] if f["kind"] == "causal"]
    causal_out = None
    if causal and select_dir:
        w_sel, c_sel = read_decoder(select_dir)
        selection = json.loads(open(inp["causal"][0]).read())
        causal_out = {**{k: causal[0][k] for k in ("task", "ratio", "strength", "train_accuracy", "fire_task",
                                                    "fire_rest")},
                      **R.causal_recovery(selection, read_parquet(inp["causal"][1]), w_sel.double(), c_sel["models"],
                                          planted, causal[0]["feature"], causal[0]["ratio"], match_cos)}
    result = {"match_cos": match_cos, "plant": truth["measured"], "causal": causal_out,
              "n_planted": {k: sum(f["kind"] == k for f in truth["features"]) for k in ("base", "sft", "rl")},
              "n_removed": sum("removed_at_step" in f for f in truth["features"]),
              "nrn": nrn_out, "mas": mas_out, "stabilization": stab_out, "preservation": pres_out, "claims": claims_out}
    write_json(out["json"], result)
    write_text(out["markdown"], recovery_markdown(result, feats))
    return {"nrn_pass": nrn_out["pass"], "nrn_recall": nrn_out["tuned_specific_recall"],
            "nrn_fpr": nrn_out["fpr_tuned_specific"], "causal_pass": causal_out and causal_out["pass"]}


def recovery_markdown(r: dict, feats: pd.DataFrame) -> str:
    n, m, p = r["nrn"], r["mas"], r["preservation"]
    lines = [
        "## Calibration: the instruments on planted ground truth", "",
        f"Planted at the dictionaries' layer: {r['n_planted']['base']} base features ({r['n_removed']} removed by "
        f"the SFT-like series), {r['n_planted']['sft']} SFT-like features (added at the first checkpoint, then held), "
        f"{r['n_planted']['rl']} RL-like features (rotating over the run). A latent recovers a planted feature when "
        f"its decoder cosine with the planted direction is >= {r['match_cos']}." + (
            f" Off its firing tokens a feature writes at most {r['plant']['max_off_mass']:.2f} of what it writes on "
            "them (|write| summed; `off_mass` per feature in planted.json)." if "max_off_mass" in r.get("plant", {})
            else "") + (
            f" One causal feature answers the {r['causal']['task']} task (written {r['causal']['ratio']:g}-fold "
            f"stronger by the RL-like series than by the base; training-item accuracy base "
            f"{r['causal']['train_accuracy']['base']:.2f}, RL-like {r['causal']['train_accuracy']['rl']:.2f}): "
            f"{r['causal']['n_critical']} critical items." if r.get("causal") else ""), "",
        "| instrument | measure | value | bar | pass |", "|---|---|---|---|---|",
        f"| NRN | tuned-specific recall | {_fmt(n['tuned_specific_recall'])} | >= {NRN_RECALL} | "
        f"{_fmt(n['tuned_specific_recall'] >= NRN_RECALL)} |",
        f"| NRN | false-positive rate (unplanted latents called tuned-specific) | {_fmt(n['fpr_tuned_specific'])} | "
        f"<= {NRN_FPR} | {_fmt(n['fpr_tuned_specific'] <= NRN_FPR)} |",
        f"| NRN + latent scaling | tuned-specific recall (nu_error, nu_recon below the bar) | "
        f"{_fmt(n['tuned_specific_scaled_recall'])} | | |",
        f"| NRN + latent scaling | false-positive rate | {_fmt(n['fpr_tuned_specific_scaled'])} | | |",
        f"| crosscoder | planted tuned-only writes held by a latent's decoder change (any NRN class) | "
        f"{_fmt(n['tuned_specific_represented'])} | | |",
        f"| NRN | base-specific recall (removed features) | {_fmt(n['base_specific_recall'])} | | |",
        f"| NRN | shared recall (kept base features) | {_fmt(n['shared_recall'])} | | |",
    ]
    for role in ("sft", "rl"):
        if role in m:
            lines.append(f"| MAS | {role} exclusive-owner recall | {_fmt(m[role]['recall'])} | | |")
    lines.append(f"| MAS | false exclusive owners (unplanted) | {_fmt(m['fpr'])} | | |")
    for run, s in r["stabilization"].items():
        lines.append(f"| stabilization | {run} stable step (planted {s['planted_stable_step']}) | "
                     f"{s['measured_stable_step']} | planted | {_fmt(s['recovered'])} |")
    lines += [f"| preservation | removed features that die on their contexts, every checkpoint | {_fmt(p['died_recall'])} | "
              f"planted schedule | {_fmt(p['schedule_recovered']['died'])} |",
              f"| preservation | removed features that weaken on their contexts, every checkpoint | "
              f"{_fmt(p['weakened_recall'])} | planted schedule | {_fmt(p['schedule_recovered']['weakened'])} |",
              f"| preservation | the same, of the {p['removed_resolved']} removed features the base SAE resolves "
              f"(a latent at cosine >= {r['match_cos']}): die / weaken on schedule | "
              f"{_fmt(p['schedule_recovered_resolved']['died'])} / {_fmt(p['schedule_recovered_resolved']['weakened'])} | | |",
              f"| preservation | unplanted latents that die / are born | {_fmt(p['fpr_died'])} / {_fmt(p['fpr_born'])} | | |",
              f"| preservation | unplanted latents that weaken / strengthen | {_fmt(p['fpr_weakened'])} / "
              f"{_fmt(p['fpr_strengthened'])} | | |"]
    for c, v in r["claims"].items():
        lines.append(f"| claims | {c} (planted {v['planted']}) | {v['measured']} | planted | {_fmt(v['recovered'])} |")
    c = r.get("causal")
    if c:
        lines.append(f"| causal | planted feature in the compact set (its latents: {c['latents'] or 'none'}) | "
                     f"{_fmt(c['selected'])} ({c['compact_size']} features) | selected | {_fmt(c['selected'])} |")
        for mode in ("disable", "amplify"):
            e = c[mode]
            if "diff" not in e:
                lines.append(f"| causal | {mode}: nothing edited | - | CI excludes 0 and the random mean | no |")
                continue
            what = edit_label(mode, e["scale"], e.get("edit", "readout"))
            lines.append(f"| causal | {what}: change on {e['n']} critical items, 95% CI (random sets' mean) | "
                         f"{e['diff']:+.3f} [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}] ({e['random_diff']:+.3f}) | "
                         f"CI excludes 0 and the random mean | {_fmt(e['pass'])} |")
    lines += ["", f"NRN operating curve: recall of planted tuned-only features and FPR on unplanted latents had "
              f"the tuned-specific threshold (configured: {n['threshold']}) been each value:", "",
              "| NRN threshold | recall | FPR |", "|---|---|---|"]
    lines += [f"| {t['threshold']:g} | {_fmt(t['recall'])} | {_fmt(t['fpr'])} |" for t in n["sweep"]]
    lines += ["", "NRN tuned-specific recall per planted strength (write norm / mean residual norm); represented: "
              "a latent's decoder change (tuned minus base) has cosine >= the match cosine with the planted write, "
              "whatever class NRN gives that latent (a weak write on contexts the base represents is often held by "
              "one shared latent whose tuned decoder adds the write):", "",
              "| strength | planted (feature, checkpoint) | recall | represented | mean best cosine |",
              "|---|---|---|---|---|"]
    for s, v in n["per_strength"].items():
        lines.append(f"| {s:g} | {v['n']} | {_fmt(v['tuned_specific_recall'])} | {_fmt(v['represented'])} | "
                     f"{_fmt(v['mean_best_cos'])} |")
    lines += ["", "Per planted feature and checkpoint (NRN; change: the best cosine of a latent's decoder change with "
              "the planted change, and that latent's NRN):", "",
              "| model | feature | strength | expected | latents | their classes | recovered | best cosine | change "
              "cosine (NRN) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in feats.itertuples():
        change = "-" if row.expected == "shared" else f"{row.change_cos:.3f} ({row.change_nrn:.2f})"
        lines.append(f"| {row.model} | {row.feature} | {row.strength:g} | {row.expected} | {row.n_latents} | "
                     f"{row.classes or '-'} | {_fmt(row.recovered)} | {row.best_cos:.3f} | {change} |")
    return "\n".join(lines) + "\n"
