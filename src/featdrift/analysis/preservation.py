"""Preservation: the base model's SAE applied to every checkpoint's activations.

Per model: FVU of the base SAE's reconstruction, CE-loss recovered (when the
dictionary stage measures it), and per-feature firing frequency and mean activation.
Died, weakened, born and strengthened are read on paired probe tokens (docs/design.md
"Preservation"): kept_k = sum_t f_k^t [f_k^B > 0] / sum_t f_k^B is how much of its activation
feature k keeps on the tokens where it fires in the base; base_share_k = sum_t f_k^B [f_k^t > 0] /
sum_t f_k^t is how much of its activation on the checkpoint's own firing tokens the base had.
A feature alive on base dies when kept < 1 - drop and weakens when kept < 1 - weaken; one alive on
the checkpoint is born when base_share < 1 - drop, strengthened when base_share < 1 - weaken.
Whole-probe frequencies cannot see a removed feature: its latent keeps firing elsewhere, on
directions the checkpoint added (the calibration's removed features kept or doubled their frequency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from ..models import parse_model
from ..settings import DriftSettings


class FeatureStats:
    """Streaming per-feature firing counts and activation sums, and the reconstruction error.

    Memory is O(n_latents + d_model) whatever the number of tokens.
    """

    def __init__(self, n_latents: int, d_model: int):
        self.n_tokens = 0
        self.fire = torch.zeros(n_latents, dtype=torch.float64)
        self.act = torch.zeros(n_latents, dtype=torch.float64)
        self.base_act = torch.zeros(n_latents, dtype=torch.float64)  # sum of f^B
        self.act_on_base = torch.zeros(n_latents, dtype=torch.float64)  # sum of f where f^B > 0
        self.base_on_own = torch.zeros(n_latents, dtype=torch.float64)  # sum of f^B where f > 0
        self.sq_err = 0.0
        self.sum_x = torch.zeros(d_model, dtype=torch.float64)
        self.sum_sq = 0.0

    def update(self, x: torch.Tensor, f: torch.Tensor, xhat: torch.Tensor, f_base: torch.Tensor | None = None) -> None:
        """x, xhat (tokens, d_model); f (tokens, n_latents) feature activations; f_base the base model's
        on the same tokens (None: this is the base model)."""
        x, xhat, f = x.double(), xhat.double(), f.double()
        fb = f if f_base is None else f_base.double()
        self.n_tokens += x.shape[0]
        self.fire += (f > 0).sum(dim=0)
        self.act += f.sum(dim=0)
        self.base_act += fb.sum(dim=0)
        self.act_on_base += (f * (fb > 0)).sum(dim=0)
        self.base_on_own += (fb * (f > 0)).sum(dim=0)
        self.sq_err += float(((x - xhat) ** 2).sum())
        self.sum_x += x.sum(dim=0)
        self.sum_sq += float((x**2).sum())

    def fvu(self) -> float:
        """sum ||x - xhat||^2 / sum ||x - mean x||^2."""
        if self.n_tokens == 0:
            return float("nan")
        total = self.sum_sq - float((self.sum_x**2).sum()) / self.n_tokens
        return self.sq_err / total if total > 0 else float("nan")

    def features(self) -> pd.DataFrame:
        """feature, freq (fraction of tokens it fires on), mean_act (over all tokens), mean_act_active (over
        firing tokens), kept and base_share (module docstring; NaN where the base, or the model, never fires)."""
        n = max(self.n_tokens, 1)
        fire = self.fire.numpy()
        act = self.act.numpy()
        base_act = self.base_act.numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            active = np.where(fire > 0, act / fire, 0.0)
            kept = np.where(base_act > 0, self.act_on_base.numpy() / base_act, np.nan)
            base_share = np.where(act > 0, self.base_on_own.numpy() / act, np.nan)
        return pd.DataFrame({"feature": np.arange(len(fire), dtype=np.int32), "freq": fire / n,
                             "mean_act": act / n, "mean_act_active": active, "kept": kept, "base_share": base_share})


def model_stats(batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], encode: Callable[[torch.Tensor], torch.Tensor],
                decode: Callable[[torch.Tensor], torch.Tensor], n_latents: int) -> tuple[pd.DataFrame, dict]:
    """Run a dictionary (encode, decode) over batches (x, x_base): a model's activations (tokens, d_model)
    and the base model's on the same tokens (None for the base model itself).

    Returns the per-feature table of FeatureStats.features() and {"n_tokens", "fvu"}.
    """
    stats = None
    with torch.no_grad():
        for x, x_base in batches:
            if stats is None:
                stats = FeatureStats(n_latents, x.shape[-1])
            f = encode(x)
            stats.update(x, f, decode(f), None if x_base is None else encode(x_base))
    if stats is None:
        raise ValueError("no activations to evaluate the base SAE on")
    return stats.features(), {"n_tokens": stats.n_tokens, "fvu": stats.fvu()}


def context_changes(kept: np.ndarray, base_share: np.ndarray, base_alive: np.ndarray, alive: np.ndarray,
                    drop: float, weaken: float) -> dict[str, np.ndarray]:
    """Boolean masks died, weakened (of features alive on base) and born, strengthened (alive on the checkpoint)."""
    kept, base_share = np.nan_to_num(kept, nan=0.0), np.nan_to_num(base_share, nan=0.0)
    return {"died": base_alive & (kept < 1.0 - drop), "weakened": base_alive & (kept < 1.0 - weaken),
            "born": alive & (base_share < 1.0 - drop), "strengthened": alive & (base_share < 1.0 - weaken)}


def preservation_tables(per_model: dict[str, tuple[pd.DataFrame, dict]],
                        cfg: DriftSettings | dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-feature and per-model tables from model name -> (features table, metrics) including "base".

    metrics: {"n_tokens", "fvu", "ce_recovered" (optional)}.
    Features: model, run, step, feature, freq, mean_act, mean_act_active, kept, base_share, base_freq,
    base_mean_act, died, weakened, born, strengthened.
    Summary: model, run, step, n_tokens, fvu, ce_recovered, n_alive, n_born, n_died, n_weakened,
    n_strengthened, frac_born,
    frac_died (both of the features alive on base; NaN if none is).
    """
    if "base" not in per_model:
        raise ValueError("preservation needs the base model's own frequencies ('base' missing)")
    p = DriftSettings.of(cfg, "preservation").preservation
    base = per_model["base"][0].set_index("feature")["freq"]
    base_act = per_model["base"][0].set_index("feature")["mean_act"]
    frames, rows = [], []
    for model, (feats, metrics) in per_model.items():
        run, step = parse_model(model)
        df = feats.copy()
        df["base_freq"] = base.reindex(df["feature"]).to_numpy()
        df["base_mean_act"] = base_act.reindex(df["feature"]).to_numpy()
        masks = context_changes(df["kept"].to_numpy(), df["base_share"].to_numpy(), df["base_freq"].to_numpy() >= p.min_freq,
                                df["freq"].to_numpy() >= p.min_freq, p.drop, p.weaken)
        for col, mask in masks.items():
            df[col] = mask
        df.insert(0, "step", np.int64(step))
        df.insert(0, "run", run)
        df.insert(0, "model", model)
        frames.append(df)
        alive_base = int((df["base_freq"] >= p.min_freq).sum())
        ce = metrics.get("ce_recovered")
        rows.append({"model": model, "run": run, "step": int(step), "n_tokens": int(metrics["n_tokens"]),
                     "fvu": float(metrics["fvu"]), "ce_recovered": float("nan") if ce is None else float(ce),
                     "n_alive": int((df["freq"] >= p.min_freq).sum()), "n_born": int(df["born"].sum()),
                     "n_died": int(df["died"].sum()), "n_weakened": int(df["weakened"].sum()),
                     "n_strengthened": int(df["strengthened"].sum()),
                     "frac_born": df["born"].sum() / alive_base if alive_base else float("nan"),
                     "frac_died": df["died"].sum() / alive_base if alive_base else float("nan")})
    key = lambda d: d.assign(_b=d["run"] != "base").sort_values(["_b", "run", "step"], kind="stable").drop(columns="_b")
    features = key(pd.concat(frames, ignore_index=True)).reset_index(drop=True)
    return features, key(pd.DataFrame(rows)).reset_index(drop=True)
