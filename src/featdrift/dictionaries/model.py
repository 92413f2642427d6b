"""One dictionary family (docs/design.md): M-model crosscoder, an SAE being M = 1.

Weights live in *scaled* units: model m's raw activation x^m is multiplied by
`scales[m]` (so that E||x|| = sqrt(d)) before encoding, and decoder outputs are in
the same scaled units. The public methods `encode`, `reconstruct`, `encode_model`
and `decode_model` take and return *raw* activations and apply the scales inside.

    encode:   f = sigma(sum_m W_enc[m]^T-contract x^m + b_enc)       W_enc (M, d, n)
    decode:   xhat^m = f @ W_dec[m] + b_dec[m]                      W_dec (M, n, d)
    readout:  f^m(x^m) = sigma_m(x^m @ W_enc[m] + b_enc)            (one model alone)

sigma and sigma_m come from the architecture (arch/: `arch` names it): ReLU for "relu";
for "batchtopk" a batch top-k in training, a global threshold `threshold` at inference
and per-model thresholds `thresholds[m]` calibrated so that each L0 matches the joint L0.
Nothing here tests the architecture's name.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..io import atomic_path, write_json
from .arch import get

TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")  # plus the architecture's own `tensors`, if any


class Dictionary(torch.nn.Module):
    def __init__(self, n_models: int, d_model: int, n_latents: int, arch: str = "batchtopk", k: int | None = None,
                 scales=None, threshold: float | None = None, thresholds=None, cfg: dict | None = None):
        super().__init__()
        self.architecture = get(arch)
        M, d, n = n_models, d_model, n_latents
        self.M, self.d, self.n, self.arch, self.k = M, d, n, arch, k
        self.W_enc = torch.nn.Parameter(torch.zeros(M, d, n))
        self.b_enc = torch.nn.Parameter(torch.zeros(n))
        self.W_dec = torch.nn.Parameter(torch.zeros(M, n, d))
        self.b_dec = torch.nn.Parameter(torch.zeros(M, d))
        self.register_buffer("scales", torch.ones(M) if scales is None else torch.as_tensor(scales, dtype=torch.float32))
        self.threshold = threshold
        self.thresholds = list(thresholds) if thresholds is not None else None
        self.cfg = dict(cfg or {})
        self.architecture.setup(self)

    # ---- scaled-unit primitives (training works in these) ----
    def pre(self, xs: torch.Tensor) -> torch.Tensor:
        """(B, M, d) scaled -> (B, n) joint pre-activation."""
        return torch.einsum("bmd,mdn->bn", xs, self.W_enc) + self.b_enc

    def activate(self, pre: torch.Tensor, train: bool = False, threshold: float | None = None) -> torch.Tensor:
        """(B, n) joint code of a joint pre-activation (the training-time one if `train`)."""
        return self.architecture.activate(self, pre, train, threshold)

    def decode_scaled(self, f: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, M, d) scaled."""
        return torch.einsum("bn,mnd->bmd", f, self.W_dec) + self.b_dec

    def dec_norms(self) -> torch.Tensor:
        """(M, n): ||W_dec,k^m||_2."""
        return self.W_dec.norm(dim=-1)

    # ---- raw-unit API for other stages ----
    def scale(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scales[:, None]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Joint features of raw activations x (B, M, d)."""
        self.check_fits(x.shape[-1], ", ".join(map(str, self.cfg.get("models", []))) or "?")
        return self.activate(self.pre(self.scale(x)))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Raw reconstructions (B, M, d) of joint features f (B, n)."""
        return self.decode_scaled(f) / self.scales[:, None]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def pre_model(self, m: int, x: torch.Tensor) -> torch.Tensor:
        return (x * self.scales[m]) @ self.W_enc[m] + self.b_enc

    def encode_model(self, m: int | str, x: torch.Tensor) -> torch.Tensor:
        """Per-model readout f^m(x^m) from model m's raw activations alone: (..., d) -> (..., n)."""
        m = self.model_index(m)
        self.check_fits(x.shape[-1], (self.cfg.get("models") or [str(m)])[m])
        return self.architecture.readout(self, m, self.pre_model(m, x))

    def readout_threshold(self, m: int | str) -> float | None:
        """Model m's readout is pre * (pre > this), or ReLU where None (for code that applies it itself)."""
        return self.architecture.readout_threshold(self, self.model_index(m))

    def decode_model(self, m: int | str, f: torch.Tensor) -> torch.Tensor:
        """Raw reconstruction of model m's activation from features f: (..., n) -> (..., d)."""
        m = self.model_index(m)
        return (f @ self.W_dec[m] + self.b_dec[m]) / self.scales[m]

    def decoder_raw(self, m: int | str) -> torch.Tensor:
        """(n, d): model m's decoder directions in raw units (for x' = x + sum_k (c-1) f_k W_dec,k^m)."""
        m = self.model_index(m)
        return self.W_dec[m] / self.scales[m]

    def check_fits(self, width: int, model: str) -> None:
        """A dictionary applies only to activations (or a model) of its own width d_model."""
        if width != self.d:
            where = getattr(self, "source", None) or self.cfg.get("name", "(unsaved)")
            layer = f" at layer {self.cfg['layer']}" if "layer" in self.cfg else ""
            raise ValueError(f"dictionary {where} (d_model {self.d}) does not fit model {model!r}: its activations"
                             f"{layer} have width {width}")

    def model_index(self, m: int | str) -> int:
        if isinstance(m, str):
            models = self.cfg.get("models", [])
            if m not in models:
                raise ValueError(f"model {m!r} is not in this dictionary (models: {models})")
            return models.index(m)
        return int(m)

    # ---- persistence ----
    def config(self) -> dict:
        cfg = dict(self.cfg)
        cfg.update({"n_models": self.M, "d_model": self.d, "n_latents": self.n, "arch": self.arch,
                    "scales": [float(s) for s in self.scales],
                    "threshold": None if self.threshold is None else float(self.threshold),
                    "thresholds": None if self.thresholds is None else [float(t) for t in self.thresholds]})
        if "k" in self.architecture.cfg_keys:
            cfg["k"] = self.k
        return cfg

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "weights.safetensors") as tmp:
            save_file({t: getattr(self, t).detach().contiguous().clone() for t in TENSORS + self.architecture.tensors},
                      str(tmp))
        write_json(directory / "cfg.json", self.config())


def load_dictionary(path: str | Path) -> tuple[Dictionary, dict]:
    """(Dictionary in eval mode, cfg) from a `dicts/{name}/layer-{L}/` folder."""
    path = Path(path)
    try:
        cfg = json.loads((path / "cfg.json").read_text())
        tensors = load_file(str(path / "weights.safetensors"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot load dictionary ({str(e).splitlines()[0]})") from None
    d = Dictionary(cfg["n_models"], cfg["d_model"], cfg["n_latents"], cfg["arch"], cfg.get("k"), cfg["scales"],
                   cfg.get("threshold"), cfg.get("thresholds"), cfg)
    with torch.no_grad():
        for t in TENSORS + d.architecture.tensors:
            getattr(d, t).copy_(tensors[t])
    d.source = str(path)
    d.eval()
    return d, cfg
