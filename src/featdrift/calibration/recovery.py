"""How much of the planted ground truth each drift instrument recovers, and how much it invents.

A latent of a dictionary *belongs to* planted feature j when its decoder, in a model where j
writes, has cosine >= match_cos with j's planted direction; a latent that belongs to no planted
feature is *unplanted*. Per instrument:

- NRN (pairwise crosscoders): a planted feature that writes only in the checkpoint should be
  tuned-specific, one that writes only in the base (removed) base-specific, one that writes in
  both shared. Recall: planted (feature, checkpoint) pairs with a belonging latent of the expected
  class. False-positive rate: unplanted live latents classed tuned-specific. Beside it, whether
  the crosscoder represents a planted change at all: the best cosine of a latent's decoder
  difference (tuned minus base) with the planted change. A weak write on contexts the base
  already represents can be merged into one shared latent (base decoder = the context, tuned =
  context + write): L1 on decoder norms favours that, since |c + p| <= |c| + |p|. The change is
  then held exactly (cosine ~1) by a latent NRN calls shared, a loss of the classifier, not of
  the dictionary.
- MAS (three-way crosscoder): features that write only in sft-final (rl-final) should be owned
  exclusively by sft (rl); FPR: unplanted latents owned exclusively by a tuned model.
- Stabilization: the instrument's stable step per run against the same definition applied to
  the planted directions themselves.
- Preservation: removed base features should die in the base SAE (recall per checkpoint);
  FPR: unplanted base-SAE latents that die or are born.
- Claims: each verdict against the answer the plant implies.
- Causal (calibration.causal): the planted causal feature must be in the selection's compact
  set, and the interventions' changes on the critical items must have intervals that exclude
  0 and the random sets' mean change.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..analysis.stabilization import cosine_matrix, match
from ..models import parse_model


def belonging(w_dec: torch.Tensor, models: list[str], planted: dict[str, torch.Tensor], match_cos: float) -> np.ndarray:
    """(n_latents, n_features) bool: latent belongs to feature j in a model of `models` where j writes."""
    out = None
    for i, m in enumerate(models):
        dirs = planted[m]
        cos = cosine_matrix(w_dec[i], dirs)  # zero rows (silent features) give cosine 0
        hit = cos >= match_cos
        out = hit if out is None else out | hit
    return out


def _expected_nrn(base_dir: torch.Tensor, tuned_dir: torch.Tensor) -> np.ndarray:
    on_b, on_t = base_dir.norm(dim=1) > 0, tuned_dir.norm(dim=1) > 0
    exp = np.full(len(on_b), "silent", dtype=object)
    exp[(on_b & on_t).numpy()] = "shared"
    exp[(on_b & ~on_t).numpy()] = "base_specific"
    exp[(~on_b & on_t).numpy()] = "tuned_specific"
    return exp


def _change_cos(w: torch.Tensor, models: list[str], planted: dict, model: str) -> np.ndarray:
    """(latents, features): cosine of each latent's decoder change (model minus base) with each planted
    change (a feature's write in `model` minus its write in the base; 0 where they are equal)."""
    i_b, i_t = models.index("base"), models.index(model)
    return cosine_matrix(w[i_t] - w[i_b], planted[model] - planted["base"])


def nrn_recovery(nrn: pd.DataFrame, decoders: dict[str, tuple[torch.Tensor, list[str]]], planted: dict,
                 strengths: list[float], match_cos: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (checkpoint, planted feature): expected class, recovered?, best cosine; per checkpoint: FPR.

    `decoders`: checkpoint -> (W_dec, models) of its pairwise crosscoder; `strengths` per feature.
    """
    rows, fp_rows, unplanted_nrn = [], [], []
    for model, (w, models) in decoders.items():
        run, step = parse_model(model)
        g = nrn[nrn["model"] == model].set_index("feature")
        cls = g["class"].reindex(range(w.shape[1])).to_numpy()
        val = g["nrn"].reindex(range(w.shape[1])).to_numpy()
        # latent scaling's verdict (drift_nrn's truly_specific), where the table has it
        kept = (g["truly_specific"].reindex(range(w.shape[1])).fillna(False).to_numpy(bool)
                if "truly_specific" in g else np.ones(w.shape[1], bool))
        bel = belonging(w, models, planted, match_cos)
        exp = _expected_nrn(planted["base"], planted[model])
        best = np.max([cosine_matrix(w[i], planted[m]) for i, m in enumerate(models)], axis=0)  # (latents, feats)
        change = _change_cos(w, models, planted, model)  # (latents, feats)
        for j, e in enumerate(exp):
            if e == "silent":
                continue
            strength = strengths[j]
            lat = np.flatnonzero(bel[:, j])
            rows.append({"model": model, "run": run, "step": step, "feature": j, "strength": strength, "expected": e,
                         "n_latents": len(lat), "classes": ",".join(sorted(set(cls[lat]))),
                         "recovered": bool((cls[lat] == e).any()), "best_cos": float(best[:, j].max()),
                         "recovered_scaled": bool(((cls[lat] == e) & kept[lat]).any()),
                         "max_nrn": float(np.nanmax(val[lat])) if len(lat) else math.nan,
                         "change_cos": float(change[:, j].max()),
                         "change_nrn": float(val[int(change[:, j].argmax())])})
        unplanted = ~bel.any(axis=1) & (cls != "dead")
        unplanted_nrn.append(val[unplanted])
        n = int(unplanted.sum())
        fp_rows.append({"model": model, "run": run, "step": step, "n_unplanted": n,
                        "n_tuned_specific": int((cls[unplanted] == "tuned_specific").sum()),
                        "n_tuned_specific_scaled": int(((cls == "tuned_specific") & kept)[unplanted].sum()),
                        "n_base_specific": int((cls[unplanted] == "base_specific").sum())})
    feats, fps = pd.DataFrame(rows), pd.DataFrame(fp_rows)
    fps["fpr_tuned_specific"] = fps["n_tuned_specific"] / fps["n_unplanted"].clip(lower=1)
    return feats, fps, np.concatenate(unplanted_nrn) if unplanted_nrn else np.array([])


def threshold_sweep(feats: pd.DataFrame, unplanted_nrn: np.ndarray, thresholds) -> pd.DataFrame:
    """Tuned-specific recall and FPR had the NRN threshold been each of `thresholds`: the
    instrument's operating curve on this plant."""
    tuned = feats[feats["expected"] == "tuned_specific"]
    return pd.DataFrame([{"threshold": t, "recall": float((tuned["max_nrn"] >= t).mean()) if len(tuned) else math.nan,
                          "fpr": float((unplanted_nrn >= t).mean()) if len(unplanted_nrn) else math.nan}
                         for t in thresholds])


def mas_recovery(mas: pd.DataFrame, w_dec: torch.Tensor, models: list[str], planted: dict, match_cos: float,
                 exclusive: float) -> dict:
    """Exclusive-owner recall of features planted in one tuned model only, and the unplanted FPR."""
    roles = [parse_model(m)[0] for m in models]
    bel = belonging(w_dec, models, planted, match_cos)
    on = {r: planted[m].norm(dim=1) > 0 for r, m in zip(roles, models)}
    top = mas[[f"mas_{r}" for r in roles]].max(axis=1).to_numpy()
    owner = mas["owner"].to_numpy()
    excl = top >= exclusive
    out = {}
    for r in roles[1:]:
        only = on[r].clone()
        for o in roles:
            if o != r:
                only &= ~on[o]
        idx = np.flatnonzero(only.numpy())
        hit = [bool(((owner[bel[:, j]] == r) & excl[bel[:, j]]).any()) for j in idx]
        out[r] = {"planted": len(idx), "recovered": int(sum(hit)), "recall": sum(hit) / len(idx) if len(idx) else math.nan}
    unplanted = ~bel.any(axis=1) & (owner != "none")
    fp = unplanted & excl & np.isin(owner, roles[1:])
    out["unplanted"] = int(unplanted.sum())
    out["false_exclusive"] = int(fp.sum())
    out["fpr"] = float(fp.sum() / max(unplanted.sum(), 1))
    return out


def true_stabilization(planted: dict, steps: dict[str, list[int]], tau: float, stable_overlap: float) -> dict:
    """The stabilization definition applied to the planted tuned-only directions themselves."""
    out = {}
    for run, run_steps in steps.items():
        sets = {}
        for s in run_steps:
            d, b = planted[f"{run}-{s}"], planted["base"]
            only = (d.norm(dim=1) > 0) & (b.norm(dim=1) == 0)
            sets[s] = d[only]
        final = run_steps[-1]
        stable = final
        for s in reversed(run_steps[:-1]):
            _, _, c = match(sets[s], sets[final], tau)
            if len(sets[s]) and len(c) / len(sets[s]) >= stable_overlap:
                stable = s
            else:
                break
        out[run] = {"stable_step": int(stable), "stable_fraction": stable / final}
    return out


def preservation_recovery(pres: pd.DataFrame, w_sae: torch.Tensor, planted: dict, match_cos: float) -> pd.DataFrame:
    """Per checkpoint: removed planted base features, how many of them died (frequency) or weakened
    (mean activation) in the base SAE, and the unplanted latents that did either or the mirror image."""
    base = planted["base"]
    bel = belonging(w_sae, ["base"], planted, match_cos)  # (latents, features)
    unplanted = ~bel.any(axis=1)
    rows = []
    for model, g in pres[pres["run"] != "base"].groupby("model", sort=False):
        run, step = parse_model(model)
        g = g.set_index("feature").sort_index()
        u = unplanted & (g["base_freq"].to_numpy() > 0)
        removed = np.flatnonzero(((base.norm(dim=1) > 0) & (planted[model].norm(dim=1) == 0)).numpy())
        kept = np.flatnonzero(((base.norm(dim=1) > 0) & (planted[model].norm(dim=1) > 0)).numpy())
        row = {"model": model, "run": run, "step": step, "n_removed": len(removed), "unplanted": int(u.sum()),
               # removed features the base SAE resolved (a latent at match_cos): the others cannot be found
               "n_removed_resolved": sum(bool(bel[:, j].any()) for j in removed)}
        for col in ("died", "weakened"):
            mask = g[col].to_numpy()
            row[f"n_{col}_found"] = sum(bool(mask[bel[:, j]].any()) for j in removed)
            row[f"n_kept_{col}"] = sum(bool(mask[bel[:, j]].any()) for j in kept)  # before their removal: wrong
            row[f"unplanted_{col}"] = int(mask[u].sum())
        for col in ("born", "strengthened"):
            row[f"unplanted_{col}"] = int(g[col].to_numpy()[u].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def planted_claims(features: list[dict], truth_stab: dict) -> dict[str, str]:
    """The verdict each claim should get in this world."""
    n_sft = sum(f["kind"] == "sft" for f in features)
    n_rl = sum(f["kind"] == "rl" for f in features)
    n_removed = sum("removed_at_step" in f for f in features)
    return {
        "more_tuned_specific": "yes" if n_sft > n_rl else "no",
        "earlier_stabilization": "yes" if truth_stab["sft"]["stable_fraction"] < truth_stab["rl"]["stable_fraction"] else "no",
        "base_preservation": "yes" if n_removed > 0 else "no",
    }


def causal_recovery(selection: dict, effects: pd.DataFrame, w_dec: torch.Tensor, models: list[str], planted: dict,
                    feature: int, ratio: float, match_cos: float) -> dict:
    """Selection and intervention scores of planted causal `feature` in the selection's dictionary.

    The amplification row scored is c = `ratio` (the factor that restores the RL-like write) when
    intervene.alphas has it, else the largest c."""
    lat = np.flatnonzero(belonging(w_dec, models, planted, match_cos)[:, feature])
    compact = set(selection["compact_set"])
    out = {"latents": lat.tolist(), "compact_size": len(compact), "in_compact": sorted(compact & set(lat.tolist())),
           "n_critical": int(sum(t.get("n_critical", 0) for t in selection["tasks"].values()))}
    out["selected"] = bool(out["in_compact"])
    crit = effects[(effects["task"] == "all critical") & effects["set"].isin(["selected", "random"])]
    amp = sorted(crit.loc[crit["mode"] == "amplify", "scale"].unique())
    edits = {"disable": 0.0, "amplify": ratio if ratio in amp else (amp[-1] if amp else None)}
    for mode, scale in edits.items():
        g = crit[(crit["mode"] == mode) & (crit["scale"] == scale)].set_index("set")
        if "selected" not in g.index:
            out[mode] = {"scale": scale, "pass": False}
            continue
        sel = g.loc["selected"]
        rnd = float(g.loc["random", "diff"]) if "random" in g.index else math.nan
        excludes = (lambda v: not sel["ci_low"] <= v <= sel["ci_high"])
        out[mode] = {"scale": float(scale), "edit": str(sel.get("edit", "readout")), "n": int(sel["n"]),
                     "diff": float(sel["diff"]), "ci_low": float(sel["ci_low"]),
                     "ci_high": float(sel["ci_high"]), "random_diff": rnd,
                     "pass": bool(excludes(0.0) and (math.isnan(rnd) or excludes(rnd)))}
    out["pass"] = bool(out["selected"] and out["disable"]["pass"] and out["amplify"]["pass"])
    return out
