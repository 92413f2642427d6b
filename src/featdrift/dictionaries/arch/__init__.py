"""Dictionary architectures, registered by name: everything that differs between them.

The Dictionary (model.py), the trainer (train.py) and the SAELens export ask the
architecture instead of testing its name, so one architecture is one module here.
Adding one (JumpReLU, ...): a new module in this package that defines
`ARCHITECTURE = <an Architecture subclass instance>`, plus its name in the
`dictionaries.arch` enum of schemas/config.schema.yaml. Modules are found by
listing the package, so nothing else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from ..model import Dictionary
    from ..settings import DictionaryConfig


class Training:
    """One training run's architecture-specific steps, called by train_dictionary in this order:
    `__init__` once after the shared initialisation; per step `encode`, `activate`, `decode`, `loss`
    (before backward), `after_step` (after the optimizer step), `fired` (the dead-latent counter),
    `l0` (on the steps the curve records); `finish` once after the last step, in eval mode.
    The default is a plain ReLU code with no extra loss, on the dense (B, n) pre-activation and code.
    An architecture may represent `pre` and `f` its own way (TopK: each token's k latents) by
    overriding every hook that reads them: activate, decode, loss, fired, l0."""

    def __init__(self, D: Dictionary, cfg: DictionaryConfig, steps: int):
        self.D, self.cfg, self.steps = D, cfg, steps

    def encode(self, step: int, xs: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor,
               dead: torch.Tensor) -> torch.Tensor:
        """Pre-activation (B, n) of the scaled batch xs (B, M*d), with its autograd graph; `dead` (n,) is
        the mask `loss` will get, for an architecture that selects dead latents while encoding."""
        return torch.addmm(b_enc, xs, W_enc)

    def activate(self, step: int, pre: torch.Tensor) -> torch.Tensor:
        """Training-time code f (B, n) of the (B, n) pre-activation."""
        return torch.relu(pre)

    def decode(self, step: int, f: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor) -> torch.Tensor:
        """Reconstruction xhat (B, M*d) of the code f (B, n): dense here; an architecture whose codes
        have a fixed number of active latents per token may gather just those decoder rows."""
        return torch.addmm(b_dec, f, W_dec)

    def loss(self, step: int, pre: torch.Tensor, f: torch.Tensor, xs: torch.Tensor, xhat: torch.Tensor,
             W_dec: torch.Tensor, dead: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor]:
        """(term added to the reconstruction loss, the curve's "aux" value). Batch tensors are 2-D and
        scaled: xs, xhat (B, M*d), W_dec (n, M*d); dead (n,) marks latents silent for dead_tokens tokens."""
        return 0.0, torch.zeros(())

    def after_step(self) -> None:
        """After each optimizer step (e.g. re-normalising the decoder)."""

    def fired(self, f: torch.Tensor) -> torch.Tensor:
        """(n,) bool: the latents active for some token of the batch (f >= 0: a positive column sum)."""
        return f.detach().sum(0) > 0

    def l0(self, f: torch.Tensor) -> float:
        """Mean number of active latents per token of the batch."""
        return float((f > 0).sum(-1).float().mean())

    def finish(self, calib_rows: Callable[[], torch.Tensor]) -> None:
        """Inference parameters after training; calib_rows() gives (N, M, d) raw train rows if needed."""


class Architecture:
    """An architecture's activation, training hooks, saved settings and SAELens export."""

    name: str = ""  # the config and cfg.json value of `arch`
    saelens_name: str = ""  # SAELens's "architecture" for the exported SAE
    # DictionaryConfig fields recorded in cfg.json. "k" is also the Dictionary's own `k` (needed to encode).
    cfg_keys: tuple[str, ...] = ()
    # Parameters of its own that `setup` registers on the Dictionary, saved beside W_enc, b_enc, W_dec, b_dec.
    tensors: tuple[str, ...] = ()
    training: type[Training] = Training
    # True when latent k's readout depends on pre_k alone (ReLU, thresholds): steering may then
    # compute only the edited latents' readouts; False (TopK) makes it read all of them.
    elementwise_readout: bool = True

    def setup(self, D: Dictionary) -> None:
        """At construction: check the arch's own parameters (and register any extra ones)."""

    def activate(self, D: Dictionary, pre: torch.Tensor, train: bool = False,
                 threshold: float | None = None) -> torch.Tensor:
        """Joint code f (B, n) of a joint pre-activation: the training-time one if `train`."""
        raise NotImplementedError

    def readout_threshold(self, D: Dictionary, m: int) -> float | None:
        """Model m's readout is pre * (pre > threshold), or ReLU where this is None."""
        return None

    def readout(self, D: Dictionary, m: int, pre: torch.Tensor) -> torch.Tensor:
        """Per-model code f^m of model m's own pre-activation (..., n)."""
        th = self.readout_threshold(D, m)
        return torch.relu(pre) if th is None else pre * (pre > th)

    def saelens_tensors(self, D: Dictionary) -> dict[str, torch.Tensor]:
        """Tensors the SAELens layout needs beyond W_enc, b_enc, W_dec, b_dec."""
        return {}

    def saelens_cfg(self, D: Dictionary) -> dict:
        """Entries the SAELens cfg.json needs for this architecture."""
        return {}


def _discover() -> dict[str, Architecture]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        arch = getattr(module, "ARCHITECTURE", None)
        if arch is not None:
            found[arch.name] = arch
    return found


ARCHITECTURES: dict[str, Architecture] = _discover()


def get(name: str) -> Architecture:
    """The registered architecture `name`; a one-line ValueError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dictionary architecture {name!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None


__all__ = ["ARCHITECTURES", "Architecture", "Training", "get"]
