"""`featdrift-steered`: lm-eval's HFLM with a feature edit at one layer (docs/design.md "interventions").

The edit is the delta form x' = x + sum_{k in S} (c - 1) f_k^m(x) W_dec,k^m, applied by a
forward hook on the dictionary's block to every position of every forward pass (prompt
and generated tokens). The reconstruction error is untouched: only the chosen features'
own decoder contributions are scaled. With `magnitudes` a_k the edit is a fixed steering
vector instead, x' = x + c sum_{k in S} a_k W_dec,k^m, which can add a feature that the edited
model's own readout never sees (intervene.amplify: steer). The hook is registered only for the
duration of each model call, so nothing stays attached to the model between or after evaluations.
"""

from __future__ import annotations

from pathlib import Path

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from ..dictionaries import Dictionary, load_dictionary
from ..models.hooks import block_hook

MODEL_NAME = "featdrift-steered"


class FeatureEdit:
    """The delta edit of features S of model m's readout, in raw activation units; with `magnitudes`
    (one per feature, in the dictionary's units) the steering vector c sum_k a_k W_dec,k^m."""

    def __init__(self, D: Dictionary, model: int | str, features, c: float, name: str = "dictionary",
                 magnitudes=None):
        feats = [int(k) for k in features]
        bad = [k for k in feats if not 0 <= k < D.n]
        if bad:
            raise ValueError(f"{name}: feature id {bad[0]} out of range (the dictionary has {D.n} latents)")
        if magnitudes is not None and len(magnitudes) != len(feats):
            raise ValueError(f"{name}: {len(magnitudes)} magnitudes for {len(feats)} features")
        m = D.model_index(model)
        idx = torch.tensor(feats, dtype=torch.long)
        with torch.no_grad():
            # pre = (x * s_m) @ W_enc[m] + b_enc, restricted to S: each feature's readout is independent.
            self.W_enc = (D.W_enc[m][:, idx] * D.scales[m]).detach().clone()
            self.b_enc = D.b_enc[idx].detach().clone()
            self.W_dec = D.decoder_raw(m)[idx].detach().clone()
        # A readout that is not elementwise (TopK) needs every latent's pre-activation: keep D for it.
        self.full = None if D.architecture.elementwise_readout else (D, m, idx)
        self.threshold = None if self.full else D.readout_threshold(m)  # None: a ReLU readout
        self.features, self.c, self.name = feats, float(c), name
        self.vector = None if magnitudes is None else (
            (float(c) * torch.as_tensor([float(a) for a in magnitudes], dtype=torch.float32)) @ self.W_dec)

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """f_S^m(x): (..., d) -> (..., |S|), the per-model readout restricted to S."""
        if self.full:
            D, m, idx = self.full
            with torch.no_grad():
                return D.encode_model(m, x.float())[..., idx]
        pre = x.float() @ self.W_enc + self.b_enc
        return torch.relu(pre) if self.threshold is None else pre * (pre > self.threshold)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        if self.vector is not None:
            return self.vector.to(x.device).expand(x.shape)
        return ((self.c - 1.0) * self.readout(x)) @ self.W_dec

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if not self.features:
            return x
        return (x.float() + self.delta(x)).to(x.dtype)


def edit_hook(model, layer: int, edit: FeatureEdit):
    """Apply `edit` to the output of block `layer` while the context is open."""
    return block_hook(model, layer, edit.apply, name=edit.name)


def _number_list(values, kind=int) -> list:
    if values is None or values == "":
        return []
    if isinstance(values, str):  # from an lm-eval model_args string: "3|17|42"
        return [kind(k) for k in values.split("|") if k]
    if isinstance(values, (int, float)):
        return [kind(values)]
    return [kind(k) for k in values]


@register_model(MODEL_NAME)
class SteeredHFLM(HFLM):
    """HFLM plus a feature edit: `dictionary` (path or Dictionary), `dict_model` (whose readout),
    `features` (ids, or "a|b|c" in model_args), `scale` (c: 0 disables, alpha amplifies),
    `magnitudes` (a_k per feature, "a|b|c" in model_args: a fixed steering vector instead of the readout)."""

    def __init__(self, pretrained, dictionary=None, dict_model=None, features=None, scale: float = 1.0,
                 layer: int | None = None, magnitudes=None, **kwargs):
        if isinstance(pretrained, (str, Path)):
            from ..models.load import load_model  # safetensors only, trust_remote_code off

            name = str(pretrained)
            pretrained, tok = load_model(pretrained)
            kwargs.setdefault("tokenizer", tok)
        else:
            name = getattr(pretrained, "name_or_path", type(pretrained).__name__)
        super().__init__(pretrained=pretrained, **kwargs)
        if dictionary is None:
            raise ValueError(f"{MODEL_NAME}: model_args needs dictionary=<path to dicts/NAME/layer-L>")
        label = str(dictionary) if isinstance(dictionary, (str, Path)) else dictionary.cfg.get("name", "dictionary")
        if isinstance(dictionary, (str, Path)):
            dictionary, _ = load_dictionary(dictionary)
        if dict_model is None:
            dict_model = 0
        self.edit = FeatureEdit(dictionary, dict_model, _number_list(features), float(scale), name=label,
                                magnitudes=None if magnitudes is None else _number_list(magnitudes, float))
        dictionary.check_fits(self.model.config.hidden_size, name)
        self.edit_layer = int(dictionary.cfg["layer"] if layer is None else layer)

    def _model_call(self, inps, attn_mask=None, labels=None):
        with edit_hook(self.model, self.edit_layer, self.edit):
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        with edit_hook(self.model, self.edit_layer, self.edit):
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
