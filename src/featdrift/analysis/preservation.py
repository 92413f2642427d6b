"""Preservation: the base model's SAE applied to every checkpoint's activations.

Per model: FVU of the base SAE's reconstruction, CE-loss recovered (when the
dictionary stage measures it), and per-feature firing frequency and mean activation.
Against the base model's own frequencies p^B: a feature dies on checkpoint t when
p^B >= min_freq and p^t < (1 - drop) p^B; it is born when p^t >= min_freq and
p^B < (1 - drop) p^t (the mirror image). A feature alive on base is weakened when its mean
activation a^t < (1 - weaken) a^B, strengthened when a^B < (1 - weaken) a^t: a removed feature
whose contexts remain can keep firing weakly, which the frequency test cannot see.
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
        self.sq_err = 0.0
        self.sum_x = torch.zeros(d_model, dtype=torch.float64)
        self.sum_sq = 0.0

    def update(self, x: torch.Tensor, f: torch.Tensor, xhat: torch.Tensor) -> None:
        """x, xhat (tokens, d_model); f (tokens, n_latents) feature activations."""
        x, xhat, f = x.double(), xhat.double(), f.double()
        self.n_tokens += x.shape[0]
        self.fire += (f > 0).sum(dim=0)
        self.act += f.sum(dim=0)
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
        """feature, freq (fraction of tokens it fires on), mean_act (over all tokens), mean_act_active (over firing tokens)."""
        n = max(self.n_tokens, 1)
        fire = self.fire.numpy()
        act = self.act.numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            active = np.where(fire > 0, act / fire, 0.0)
        return pd.DataFrame({"feature": np.arange(len(fire), dtype=np.int32), "freq": fire / n,
                             "mean_act": act / n, "mean_act_active": active})


def model_stats(batches: Iterable[torch.Tensor], encode: Callable[[torch.Tensor], torch.Tensor],
                decode: Callable[[torch.Tensor], torch.Tensor], n_latents: int) -> tuple[pd.DataFrame, dict]:
    """Run a dictionary (encode, decode) over activation batches (tokens, d_model).

    Returns the per-feature table of FeatureStats.features() and {"n_tokens", "fvu"}.
    """
    stats = None
    with torch.no_grad():
        for x in batches:
            if stats is None:
                stats = FeatureStats(n_latents, x.shape[-1])
            f = encode(x)
            stats.update(x, f, decode(f))
    if stats is None:
        raise ValueError("no activations to evaluate the base SAE on")
    return stats.features(), {"n_tokens": stats.n_tokens, "fvu": stats.fvu()}


def born_died(base_freq: np.ndarray, freq: np.ndarray, drop: float, min_freq: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (born, died) of a checkpoint's frequencies against the base model's."""
    died = (base_freq >= min_freq) & (freq < (1.0 - drop) * base_freq)
    born = (freq >= min_freq) & (base_freq < (1.0 - drop) * freq)
    return born, died


def weakened_strengthened(base_act: np.ndarray, act: np.ndarray, base_alive: np.ndarray, alive: np.ndarray,
                          weaken: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (weakened, strengthened) of mean activations against the base model's."""
    return base_alive & (act < (1.0 - weaken) * base_act), alive & (base_act < (1.0 - weaken) * act)


def preservation_tables(per_model: dict[str, tuple[pd.DataFrame, dict]],
                        cfg: DriftSettings | dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-feature and per-model tables from model name -> (features table, metrics) including "base".

    metrics: {"n_tokens", "fvu", "ce_recovered" (optional)}.
    Features: model, run, step, feature, freq, mean_act, mean_act_active, base_freq, born, died,
    base_mean_act, weakened, strengthened.
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
        df["born"], df["died"] = born_died(df["base_freq"].to_numpy(), df["freq"].to_numpy(), p.drop, p.min_freq)
        df["base_mean_act"] = base_act.reindex(df["feature"]).to_numpy()
        df["weakened"], df["strengthened"] = weakened_strengthened(
            df["base_mean_act"].to_numpy(), df["mean_act"].to_numpy(), df["base_freq"].to_numpy() >= p.min_freq,
            df["freq"].to_numpy() >= p.min_freq, p.weaken)
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
