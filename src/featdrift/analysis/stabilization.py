"""Stabilization of the tuned-specific feature set across checkpoints.

S_t = the top-k features by NRN of the pairwise crosscoder at checkpoint t, each
represented by its tuned-model decoder vector. Crosscoders of different checkpoints
are trained separately, so features are paired by one-to-one matching on decoder
cosine: Overlap(t_i, t_j) = |matched pairs with cosine >= tau| / |S_{t_i}|, with the
matching (Hungarian) chosen to maximize the number of such pairs, then their cosine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..settings import DriftSettings


def top_k(nrn: pd.DataFrame, k: int) -> np.ndarray:
    """Feature indices of the k highest NRN of one crosscoder (dead features last, ties by index)."""
    order = nrn.assign(_key=nrn["nrn"].fillna(-1.0)).sort_values(["_key", "feature"], ascending=[False, True], kind="stable")
    return order["feature"].to_numpy()[: min(k, len(order))].copy()


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(n_a, d), (n_b, d) -> (n_a, n_b) cosine similarities (0 against a zero vector)."""
    a = torch.nn.functional.normalize(a.double(), dim=-1)
    b = torch.nn.functional.normalize(b.double(), dim=-1)
    return (a @ b.T).numpy()


def match(a: torch.Tensor, b: torch.Tensor, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of rows of `a` to rows of `b` with cosine >= tau.

    Maximizes the number of matched pairs first, then their total cosine: admissible pairs
    weigh 1 + cos / (2n) (n = max set size), so one more pair always outweighs any cosine gain.
    Returns (rows of a, rows of b, cosines) of the admissible matched pairs.
    """
    if len(a) == 0 or len(b) == 0:
        return np.array([], int), np.array([], int), np.array([], float)
    cos = cosine_matrix(a, b)
    ok = cos >= tau
    weight = np.where(ok, 1.0 + cos / (2.0 * max(len(a), len(b))), 0.0)
    from scipy.optimize import linear_sum_assignment  # ~1 s to import: only the jobs that match pay it

    ri, ci = linear_sum_assignment(weight, maximize=True)
    keep = ok[ri, ci]
    return ri[keep], ci[keep], cos[ri[keep], ci[keep]]


def overlap(a: torch.Tensor, b: torch.Tensor, tau: float) -> tuple[float, int, float]:
    """(fraction of rows of `a` matched, number matched, mean cosine of matched pairs)."""
    _, _, c = match(a, b, tau)
    frac = len(c) / len(a) if len(a) else float("nan")
    return frac, len(c), float(c.mean()) if len(c) else float("nan")


def stabilization_table(nrn: pd.DataFrame, decoders: dict[str, torch.Tensor], cfg: DriftSettings | dict) -> pd.DataFrame:
    """Overlaps of S_t between successive checkpoints and against the final one, per run.

    `nrn` is the per-feature NRN table (model, run, step, feature, nrn, ...); `decoders` maps a
    checkpoint name to its crosscoder's tuned-model decoder (n_latents, d_model).
    Columns: run, kind ("successive" | "final"), step_from, step_to, k, n_matched, overlap,
    mean_cos, min_nrn_from (smallest NRN in S_{step_from}).
    """
    st = DriftSettings.of(cfg, "stabilization").stabilization
    k, tau = st.k, st.tau
    rows = []
    for run, g in nrn.groupby("run", sort=True):
        steps = sorted(g["step"].unique())
        sets = {}
        for step in steps:
            gs = g[g["step"] == step]
            idx = top_k(gs, k)
            model = gs["model"].iloc[0]
            sets[step] = (decoders[model][torch.as_tensor(idx, dtype=torch.long)],
                          float(gs.set_index("feature").loc[idx, "nrn"].min()) if len(idx) else float("nan"))
        pairs = [("successive", s, t) for s, t in zip(steps[:-1], steps[1:])]
        pairs += [("final", s, steps[-1]) for s in steps[:-1]]
        for kind, s, t in pairs:
            frac, n, mc = overlap(sets[s][0], sets[t][0], tau)
            rows.append({"run": run, "kind": kind, "step_from": int(s), "step_to": int(t), "k": len(sets[s][0]),
                         "n_matched": n, "overlap": frac, "mean_cos": mc, "min_nrn_from": sets[s][1]})
    cols = ["run", "kind", "step_from", "step_to", "k", "n_matched", "overlap", "mean_cos", "min_nrn_from"]
    return pd.DataFrame(rows, columns=cols)


def stabilization_summary(table: pd.DataFrame, steps: dict[str, list[int]], cfg: DriftSettings | dict) -> pd.DataFrame:
    """Per run: the earliest checkpoint from which every later set overlaps the final one by >= stable_overlap.

    Columns: run, final_step, stable_step (the final step if no earlier one qualifies),
    stable_fraction (stable_step / final_step), mean_overlap_final, mean_overlap_successive
    (means over the pairs of that kind; NaN with a single checkpoint).
    """
    thr = DriftSettings.of(cfg, "stabilization").stabilization.stable_overlap
    rows = []
    for run, run_steps in sorted(steps.items()):
        run_steps = sorted(run_steps)
        final = run_steps[-1]
        t = table[table["run"] == run]
        vs_final = t[t["kind"] == "final"].set_index("step_from")["overlap"]
        stable = final
        for s in reversed(run_steps[:-1]):
            if vs_final.get(s, float("nan")) >= thr:
                stable = s
            else:
                break
        succ = t[t["kind"] == "successive"]["overlap"]
        rows.append({"run": run, "final_step": int(final), "stable_step": int(stable),
                     "stable_fraction": stable / final if final else float("nan"),
                     "mean_overlap_final": float(vs_final.mean()) if len(vs_final) else float("nan"),
                     "mean_overlap_successive": float(succ.mean()) if len(succ) else float("nan")})
    return pd.DataFrame(rows)
