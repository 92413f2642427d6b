"""One dictionary family (DESIGN.md): M-model crosscoder, an SAE being M = 1.

Weights live in *scaled* units: model m's raw activation x^m is multiplied by
`scales[m]` (so that E||x|| = sqrt(d)) before encoding, and decoder outputs are in
the same scaled units. The public methods `encode`, `reconstruct`, `encode_model`
and `decode_model` take and return *raw* activations and apply the scales inside.

    encode:   f = sigma(sum_m W_enc[m]^T-contract x^m + b_enc)       W_enc (M, d, n)
    decode:   xhat^m = f @ W_dec[m] + b_dec[m]                      W_dec (M, n, d)
    readout:  f^m(x^m) = sigma_m(x^m @ W_enc[m] + b_enc)            (one model alone)

sigma is ReLU (arch "relu"), or for arch "batchtopk" a batch top-k in training and
a global threshold `threshold` at inference; the per-model readout uses its own
threshold `thresholds[m]`, calibrated so that its L0 matches the joint L0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..io import atomic_path, write_json

TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")


class Dictionary(torch.nn.Module):
    def __init__(self, n_models: int, d_model: int, n_latents: int, arch: str = "batchtopk", k: int | None = None,
                 scales=None, threshold: float | None = None, thresholds=None, cfg: dict | None = None):
        super().__init__()
        if arch not in ("relu", "batchtopk"):
            raise ValueError(f"unknown dictionary architecture {arch!r} (relu, batchtopk)")
        if arch == "batchtopk" and not k:
            raise ValueError("arch batchtopk needs k")
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

    # ---- scaled-unit primitives (training works in these) ----
    def pre(self, xs: torch.Tensor) -> torch.Tensor:
        """(B, M, d) scaled -> (B, n) joint pre-activation."""
        return torch.einsum("bmd,mdn->bn", xs, self.W_enc) + self.b_enc

    def activate(self, pre: torch.Tensor, train: bool = False, threshold: float | None = None) -> torch.Tensor:
        if self.arch == "relu":
            return torch.relu(pre)
        if train:
            return batch_topk(pre, self.k)
        th = self.threshold if threshold is None else threshold
        if th is None:
            raise ValueError("batchtopk dictionary has no inference threshold yet")
        return pre * (pre > th)

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
        pre = self.pre_model(m, x)
        if self.arch == "relu":
            return torch.relu(pre)
        if self.thresholds is None:
            raise ValueError("batchtopk dictionary has no per-model readout thresholds")
        return pre * (pre > self.thresholds[m])

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
        if self.arch == "batchtopk":
            cfg["k"] = self.k
        return cfg

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "weights.safetensors") as tmp:
            save_file({t: getattr(self, t).detach().contiguous().clone() for t in TENSORS}, str(tmp))
        write_json(directory / "cfg.json", self.config())


_SAMPLE_STRIDES = (61, 67, 71, 73, 79, 83, 89, 97)  # primes: one of them is coprime with n


def batch_topk_threshold(pre: torch.Tensor, k: int) -> float:
    """The (k * B)-th largest entry of relu(pre) for a (B, n) batch: exact and deterministic.

    Selection without sorting or a top-k of the whole batch: a strided sample (stride
    coprime with n, so every latent is sampled) gives a lower bound that about 1.5kB
    entries pass; the exact order statistic is then selected among those candidates
    (among all entries if fewer than kB pass). The result does not depend on the sample."""
    flat = pre.detach().reshape(-1)
    N = flat.numel()
    kk = min(k * pre.shape[0], N)
    if flat.device.type != "cpu":
        return max(float(flat.kthvalue(N - kk + 1).values), 0.0)
    a = flat.numpy()
    if N >= 1 << 16:
        s = next((s for s in _SAMPLE_STRIDES if math.gcd(s, pre.shape[-1]) == 1), 1)
        sample = a[::s]
        m = min(sample.size, 3 * kk // (2 * s) + 1)
        lower = np.partition(sample, sample.size - m)[sample.size - m]
        cand = np.compress(a >= lower, a)
        if cand.size >= kk:
            return max(float(np.partition(cand, cand.size - kk)[cand.size - kk]), 0.0)
    return max(float(np.partition(a, N - kk)[N - kk]), 0.0)


def batch_topk(pre: torch.Tensor, k: int, threshold: float | None = None) -> torch.Tensor:
    """BatchTopK of a (B, n) pre-activation: keep the k * B largest entries of relu(pre), zero elsewhere.

    One fused elementwise op (and one in backward): entries >= the (k * B)-th largest
    value, if positive. Entries tied with that value are all kept (measure zero for real data).
    `threshold` is batch_topk_threshold(pre, k) if the caller has it already."""
    th = max(batch_topk_threshold(pre, k) if threshold is None else threshold, 0.0)  # never below 0 (ReLU)
    if th > 0:  # F.threshold keeps x > th; the largest float below th keeps x >= th
        th = float(torch.nextafter(torch.tensor(th, dtype=pre.dtype), torch.tensor(-math.inf, dtype=pre.dtype)))
    return torch.nn.functional.threshold(pre, th, 0.0)


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
        for t in TENSORS:
            getattr(d, t).copy_(tensors[t])
    d.source = str(path)
    d.eval()
    return d, cfg
