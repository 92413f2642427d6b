"""Training curves from the trainer's log history: Parquet + PNG."""

from __future__ import annotations

import pandas as pd

from ..io import write_parquet
from ..plots import line_plot

# trainer log key -> curve column; RL adds reward statistics and completion length.
COLUMNS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "epoch": "epoch"}
RL_COLUMNS = {"reward": "reward_mean", "reward_std": "reward_std", "frac_reward_zero_std": "frac_zero_std_groups",
              "completions/mean_length": "completion_length", "completions/clipped_ratio": "clipped_ratio"}
SFT_COLUMNS = {"mean_token_accuracy": "token_accuracy"}


def curves(log_history: list[dict], run: str) -> pd.DataFrame:
    cols = {**COLUMNS, **(RL_COLUMNS if run == "rl" else SFT_COLUMNS)}
    rows = [{"step": e["step"], **{c: e.get(k) for k, c in cols.items()}} for e in log_history if "loss" in e]
    return pd.DataFrame(rows, columns=["step", *cols.values()]).astype(float).astype({"step": int})


def write_curves(df: pd.DataFrame, run: str, parquet, png) -> None:
    write_parquet(parquet, df, metadata={"run": run})
    ys = ["loss", "lr"] + (["reward_mean", "reward_std", "frac_zero_std_groups", "completion_length"] if run == "rl" else [])
    line_plot(df, "step", ys, png, title=f"{run.upper()} training curves", ylabel="")
