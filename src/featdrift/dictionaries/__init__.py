"""The shared feature space: SAEs and crosscoders of one family (see docs/design.md and model.py).

Other stages: `D, cfg = load_dictionary(path)`, then `D.encode_model(m, x)` (per-model
readout of raw activations), `D.decode_model(m, f)`, `D.decoder_raw(m)`, `D.dec_norms()`.
The architectures (ReLU, BatchTopK, TopK) are registered in arch/; training settings are a
DictionaryConfig (settings.py); the train / held-out row split is split.held_out.
"""

from __future__ import annotations

__all__ = ["Dictionary", "load_dictionary"]


def __getattr__(name: str):
    """Dictionary and load_dictionary on first use: model.py imports torch (~2.5 s), and every Snakemake
    start imports this package for DictionaryConfig (rules/dictionaries.smk), which needs none of it."""
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
