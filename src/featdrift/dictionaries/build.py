"""The dictionaries stage: train one dictionary and write its folder; measure it in a job of its own.

Training and measuring are two jobs so that a metrics-only key (eval_tokens,
ce_sequences) remeasures a dictionary without retraining it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..activations.store import ActivationStore
from ..determinism import set_determinism
from ..io import atomic_dir, write_json, write_parquet
from .model import load_dictionary
from .saelens import export_saelens
from .settings import DictionaryConfig
from .train import train_dictionary


def per_model(shards: list[str], models: list[str]) -> list[list[str]]:
    """A rule's flat shard list (model by model, as dict_inputs lists them) as shards[m][i]."""
    n = len(shards) // len(models)
    return [list(shards[m * n : (m + 1) * n]) for m in range(len(models))]


def _at_layer(store, layer: int):
    """`store` (an ActivationStore or an object with its interface), checked to hold `layer`'s rows."""
    if store.layer != layer:
        where = store.paths[0][0] if isinstance(store, ActivationStore) else "the online source"
        raise ValueError(f"{where}: activations of layer {store.layer}, expected {layer}")
    return store


def training_source(models: list[str], layer: int, shards: list[str], model_paths: list[str], online: dict | None,
                    tokens: int, corpus_seed: int, trust_remote_code: bool = False):
    """The rows a dictionary trains on: the models' probe shards (flat, model by model) or, with an
    `online` section, its models run on the corpus (the corpus drawn with the run's seed, so that
    replicas of other dictionary seeds see the same stream)."""
    if online is None:
        return _at_layer(ActivationStore(per_model(shards, models), models), layer)
    from ..activations.online import OnlineSource  # loads models: only online jobs pay for it

    return OnlineSource(model_paths, models, layer, online, tokens, corpus_seed, trust_remote_code)


def build_dictionary(name: str, models: list[str], source, layer: int, cfg, seed: int,
                     threads: int, out_dir: str, saelens: bool = False, context_size: int = 0,
                     device: str = "cpu") -> dict:
    """Write weights.safetensors, cfg.json, curve.parquet (and saelens/) into out_dir, as one atomic folder.

    `source`: the models' activation shards (`shards[m][i]`), or an object with the store's
    interface (an ActivationStore, an activations.online.OnlineSource). `cfg` is the
    `dictionaries` section (or a DictionaryConfig); returns the last curve row."""
    settings = DictionaryConfig.of(cfg)
    store = _at_layer(ActivationStore(source, models) if isinstance(source, list) else source, layer)
    meta = {"name": name, "layer": layer, "hook": "resid_post", "seed": seed, "train": settings.as_dict(),
            **getattr(store, "record", {})}  # an online source says what it streamed
    D, curve = train_dictionary(store, models, settings, seed, threads, meta, device)
    with atomic_dir(out_dir) as tmp:
        D.save(tmp)
        write_parquet(Path(tmp) / "curve.parquet", pd.DataFrame(curve))
        if saelens:
            export_saelens(D, Path(tmp) / "saelens", models[0], layer, context_size)
    return curve[-1]


def measure_dictionary(dict_dir: str, models: list[str], shards: list[list[str]], model_paths: list[str],
                       probe_path: str, layer: int, cfg: dict, threads: int, out_path: str,
                       trust_remote_code: bool = False) -> dict:
    """metrics.json of a trained dictionary: reconstruction on held-out probe rows, CE-loss recovered per model.

    `cfg` holds holdout_every, eval_tokens and ce_sequences (the `dictionaries` keys the metrics read)."""
    from .metrics import ce_recovered, reconstruction_metrics  # loads models: training jobs do not pay for it

    set_determinism(threads)
    D, dcfg = load_dictionary(dict_dir)
    store = _at_layer(ActivationStore(shards, models), layer)
    metrics = {"name": dcfg["name"], "models": models, "layer": layer, "arch": D.arch, "n_latents": D.n,
               "train_tokens": dcfg["train"]["tokens"],
               **reconstruction_metrics(D, store, cfg["holdout_every"], cfg["eval_tokens"])}
    if cfg["ce_sequences"]:
        ce = ce_recovered(D, model_paths, probe_path, layer, cfg["holdout_every"], cfg["ce_sequences"],
                          trust_remote_code=trust_remote_code)
        for m, vals in ce.items():
            metrics["per_model"][m].update(vals)
    write_json(out_path, metrics)
    return metrics
