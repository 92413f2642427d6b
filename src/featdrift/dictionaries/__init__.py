"""The shared feature space: SAEs and crosscoders of one family (see docs/design.md and model.py).

Other stages: `D, cfg = load_dictionary(path)`, then `D.encode_model(m, x)` (per-model
readout of raw activations), `D.decode_model(m, f)`, `D.decoder_raw(m)`, `D.dec_norms()`.
The architectures (ReLU, BatchTopK) are registered in arch/; training settings are a
DictionaryConfig (settings.py); the train / held-out row split is split.held_out.
"""

from .model import Dictionary, load_dictionary


def encode_model(D: Dictionary, m, x):
    """Per-model readout f^m(x^m) of raw activations of model m (index or name)."""
    return D.encode_model(m, x)


__all__ = ["Dictionary", "load_dictionary", "encode_model"]
