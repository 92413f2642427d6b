"""Export an SAE (M = 1) in SAELens's on-disk layout: cfg.json + sae_weights.safetensors.

The input scale is folded into the weights, so the exported SAE takes raw
residual-stream activations. SAELens conventions: W_enc (d_in, d_sae), W_dec
(d_sae, d_in); `apply_b_dec_to_input` is false because our encoder does not
subtract b_dec. The architecture names SAELens's architecture and adds its own
tensors (arch/: BatchTopK with its global threshold is "jumprelu", the same function
f = pre * (pre > threshold); ReLU is "standard").
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_file

from ..io import atomic_path, write_json
from .model import Dictionary


def export_saelens(D: Dictionary, out_dir: str | Path, model_name: str, layer: int, context_size: int) -> None:
    if D.M != 1:
        raise ValueError("SAELens export is for SAEs (one model); this dictionary has M = %d" % D.M)
    s = float(D.scales[0])
    tensors = {
        "W_enc": (D.W_enc[0] * s).detach().contiguous().clone(),
        "b_enc": D.b_enc.detach().clone(),
        "W_dec": (D.W_dec[0] / s).detach().contiguous().clone(),
        "b_dec": (D.b_dec[0] / s).detach().clone(),
    }
    tensors.update(D.architecture.saelens_tensors(D))
    hook = f"blocks.{layer}.hook_resid_post"
    meta = {"model_name": model_name, "hook_name": hook, "hook_layer": layer, "hook_head_index": None,
            "context_size": context_size, "prepend_bos": False, "dataset_path": None,
            "hf_hook": f"model.layers.{layer} output", "featdrift_scale": s}
    cfg = {
        "architecture": D.architecture.saelens_name, "d_in": D.d, "d_sae": D.n, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": meta,
        # SAELens < 6 reads these at the top level.
        **{k: v for k, v in meta.items() if k not in ("hf_hook", "featdrift_scale")},
        "activation_fn_str": "relu", "finetuning_scaling_factor": False,
        **D.architecture.saelens_cfg(D),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "sae_weights.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(out_dir / "cfg.json", cfg)
