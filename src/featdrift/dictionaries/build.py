"""The dictionaries stage: train one dictionary, measure it, write its folder (and SAELens export)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..activations.store import ActivationStore
from ..io import atomic_dir, write_json, write_parquet
from .metrics import ce_recovered, reconstruction_metrics
from .saelens import export_saelens
from .train import train_dictionary


def build_dictionary(name: str, models: list[str], shards: list[list[str]], model_paths: list[str], probe_path: str,
                     layer: int, cfg: dict, seed: int, threads: int, out_dir: str, saelens: bool = False,
                     context_size: int = 0, trust_remote_code: bool = False) -> dict:
    """Write weights.safetensors, cfg.json, metrics.json, curve.parquet (and saelens/) into out_dir; return the metrics."""
    store = ActivationStore(shards, models)
    if store.layer != layer:
        raise ValueError(f"{shards[0][0]}: shard holds layer {store.layer}, expected {layer}")
    meta = {"name": name, "layer": layer, "hook": "resid_post", "seed": seed,
            "train": {k: cfg[k] for k in sorted(cfg) if k not in ("ce_sequences", "eval_tokens")}}
    D, curve = train_dictionary(store, models, cfg, seed, threads, meta)
    metrics = {"name": name, "models": models, "layer": layer, "arch": D.arch, "n_latents": D.n,
               "train_tokens": cfg["tokens"], **reconstruction_metrics(D, store, cfg["holdout_every"], cfg["eval_tokens"])}
    if cfg["ce_sequences"]:
        ce = ce_recovered(D, model_paths, probe_path, layer, cfg["holdout_every"], cfg["ce_sequences"],
                          trust_remote_code=trust_remote_code)
        for m, vals in ce.items():
            metrics["per_model"][m].update(vals)
    with atomic_dir(out_dir) as tmp:
        D.save(tmp)
        write_json(Path(tmp) / "metrics.json", metrics)
        write_parquet(Path(tmp) / "curve.parquet", pd.DataFrame(curve))
        if saelens:
            export_saelens(D, Path(tmp) / "saelens", models[0], layer, context_size)
    return metrics
