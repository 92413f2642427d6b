"""Typed config sections: what the library reads from a section, as frozen dataclasses.

Rules hand sections to the scripts as dicts (Snakemake params), often only the keys a job
reads. A library entry point turns its dict into one of these with `of`, so that a misspelt,
missing or stray key stops the job at its start with one line naming the key, not with a
KeyError deep inside a computation. The schema (schemas/config.schema.yaml) owns defaults and
ranges; a field here has a default only where the library treated the key as optional before.
The `dictionaries` section's class lives beside the architectures (featdrift.dictionaries.settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from .config import ConfigError


def _frozen(v):
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


class Section:
    """Base of the section dataclasses: strict construction from a dict."""

    path: ClassVar[str]  # the section's key path, for messages
    unread: ClassVar[frozenset[str]] = frozenset()  # keys of the section that rules read, not the library
    nested: ClassVar[dict[str, type[Section]]] = {}

    @classmethod
    def from_config(cls, section: Mapping):
        """The settings in `section`: every required field present, no key the schema section lacks."""
        if not isinstance(section, Mapping):
            raise ConfigError(f"{cls.path}: expected a mapping, got {type(section).__name__}")
        fields = dataclasses.fields(cls)
        unknown = sorted(set(section) - {f.name for f in fields} - cls.unread)
        if unknown:
            raise ConfigError(f"{cls.path}: unknown key {', '.join(map(repr, unknown))}")
        missing = [f.name for f in fields if f.name not in section
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{cls.path}: missing key {', '.join(map(repr, missing))}")
        kw = {}
        for f in fields:
            if f.name in section:
                v, sub = section[f.name], cls.nested.get(f.name)
                kw[f.name] = sub.from_config(v) if sub is not None else _frozen(v)
        return cls(**kw)

    @classmethod
    def of(cls, cfg):
        """`cfg` as this class: already one, or a dict for from_config (tests and scripts pass either)."""
        return cfg if isinstance(cfg, cls) else cls.from_config(cfg)


# --- drift ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NrnSettings(Section):
    base_specific: float
    tuned_specific: float
    tail: float
    bins: int
    path: ClassVar[str] = "drift.nrn"

    def __post_init__(self):
        # classify() gives tuned_specific precedence: unordered thresholds would silently empty "shared".
        if not self.base_specific < self.tuned_specific:
            raise ConfigError(f"drift.nrn.base_specific: {self.base_specific} is not below "
                              f"drift.nrn.tuned_specific {self.tuned_specific}")


@dataclasses.dataclass(frozen=True)
class MasSettings(Section):
    exclusive: float
    path: ClassVar[str] = "drift.mas"


@dataclasses.dataclass(frozen=True)
class StabilizationSettings(Section):
    k: int
    tau: float
    stable_overlap: float
    path: ClassVar[str] = "drift.stabilization"


@dataclasses.dataclass(frozen=True)
class PreservationSettings(Section):
    drop: float
    min_freq: float
    weaken: float = 0.5
    path: ClassVar[str] = "drift.preservation"


@dataclasses.dataclass(frozen=True)
class LatentScalingSettings(Section):
    max_ratio: float
    path: ClassVar[str] = "drift.latent_scaling"


@dataclasses.dataclass(frozen=True)
class DriftSettings(Section):
    """The `drift` section. Parts may be absent (a rule may pass a job only what it reads);
    `of(cfg, *need)` names the parts a function reads, so an absent one is a one-line error."""

    norm: str | None = None
    nrn: NrnSettings | None = None
    mas: MasSettings | None = None
    stabilization: StabilizationSettings | None = None
    preservation: PreservationSettings | None = None
    latent_scaling: LatentScalingSettings | None = None
    seeds: tuple[int, ...] | None = None  # dictionary seed offsets: the rules resolve them into paths
    seed_match_cos: float | None = None
    path: ClassVar[str] = "drift"
    unread: ClassVar[frozenset[str]] = frozenset({"threads"})  # the jobs' threads, set by the rules
    nested: ClassVar[dict] = {"nrn": NrnSettings, "mas": MasSettings, "stabilization": StabilizationSettings,
                              "preservation": PreservationSettings, "latent_scaling": LatentScalingSettings}

    @classmethod
    def of(cls, cfg, *need: str) -> DriftSettings:
        s = super().of(cfg)
        absent = [n for n in need if getattr(s, n) is None]
        if absent:
            raise ConfigError(f"drift: missing key {', '.join(map(repr, absent))}")
        return s


# --- activations, probe -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ActivationSettings(Section):
    """What a capture job reads of `activations` (layers come separately; threads set the job's threads)."""

    shards: int
    dtype: str
    batch_size: int
    device: str = "cpu"
    path: ClassVar[str] = "activations"
    unread: ClassVar[frozenset[str]] = frozenset({"layers", "threads"})


@dataclasses.dataclass(frozen=True)
class ProbeSettings(Section):
    n_tokens: int
    seq_len: int
    generic_share: float
    path: ClassVar[str] = "probe"


# --- evaluation, selection, interventions -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EvalSettings(Section):
    """What an lm-eval call reads of `eval` (the rest sets up tasks and job threads)."""

    batch_size: int
    device: str
    limit: int | None = None
    builtin_max_gen_toks: int | None = None  # passed by the rules for built-in tasks only

    @property
    def gen_kwargs(self) -> dict | None:
        """lm-eval's generation overrides: the built-in tasks' length cap, if any."""
        return {"max_gen_toks": self.builtin_max_gen_toks} if self.builtin_max_gen_toks else None

    path: ClassVar[str] = "eval"
    unread: ClassVar[frozenset[str]] = frozenset({"builtin_tasks", "max_gen_toks", "threads"})


@dataclasses.dataclass(frozen=True)
class SelectSettings(Section):
    """What the select job reads of `select` (the dictionary and its layer are resolved by the rule)."""

    rho: float
    min_tasks: int | None
    batch_size: int
    path: ClassVar[str] = "select"
    unread: ClassVar[frozenset[str]] = frozenset({"dictionary", "layer"})


@dataclasses.dataclass(frozen=True)
class InterveneSettings(Section):
    alphas: tuple[float, ...]
    n_random: int
    roles: tuple[str, ...]
    bootstrap: int
    confidence: float
    amplify: str
    path: ClassVar[str] = "intervene"


# --- base model -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PretrainModelSettings(Section):
    """The tiny model's family and shape (featdrift.models.build.tiny_model)."""

    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_len: int
    family: str = "llama"  # the default builds today's model: tests and older configs omit it
    n_kv_heads: int | None = None  # None: n_heads (no grouped-query attention)
    path: ClassVar[str] = "base.pretrain.model"

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads


@dataclasses.dataclass(frozen=True)
class PretrainTrainSettings(Section):
    """The pretraining loop's settings (featdrift.models.pretrain)."""

    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup: int
    weight_decay: float
    path: ClassVar[str] = "base.pretrain.train"


@dataclasses.dataclass(frozen=True)
class PretrainSettings(Section):
    """What the base job reads of `base.pretrain`: the corpus is the corpus rule's (it builds the text)."""

    model: PretrainModelSettings
    train: PretrainTrainSettings
    tokenizer: str = "char"
    bpe_vocab: int = 512
    path: ClassVar[str] = "base.pretrain"
    unread: ClassVar[frozenset[str]] = frozenset({"corpus"})
    nested: ClassVar[dict] = {"model": PretrainModelSettings, "train": PretrainTrainSettings}


@dataclasses.dataclass(frozen=True)
class BaseSettings(Section):
    """The `base` section: an existing model to import (pretrained), or the tiny one to pretrain."""

    trust_remote_code: bool
    pretrained: str | None = None
    pretrain: PretrainSettings | None = None
    path: ClassVar[str] = "base"
    nested: ClassVar[dict] = {"pretrain": PretrainSettings}

    def __post_init__(self):
        if not self.pretrained and self.pretrain is None:
            raise ConfigError("base: set either base.pretrained (an existing model) or base.pretrain (build one)")


# --- training ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SftSettings(Section):
    lr: float
    grad_accum: int
    max_length: int
    path: ClassVar[str] = "train.sft"


@dataclasses.dataclass(frozen=True)
class RlSettings(Section):
    lr: float
    num_generations: int
    grad_accum: int
    max_completion_length: int
    temperature: float
    beta: float
    loss_type: str
    format_reward: float = 0.0  # off unless set, as the reward functions always treated it
    use_vllm: bool = False  # transformers' generate unless set (vLLM: GPU only, checked at job start)
    path: ClassVar[str] = "train.rl"


def _plain(v):
    """`v` as JSON reads it back (tuples are lists), so that a stored fingerprint compares equal."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


@dataclasses.dataclass(frozen=True)
class TrainSettings(Section):
    """The `train` section: the settings both runs share, and each run's own part.

    The train rules pass a run only its own part (rules/train.smk train_params), so `sft` and `rl`
    may be absent; `of(cfg, *need)` names the parts a function reads. threads, resources and
    checkpoints_per_epoch set the job and its step grid (the steps come separately), never the trainer.
    """

    epochs: int
    batch_size: int
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    bf16: bool
    gradient_checkpointing: bool
    deterministic: bool
    num_processes: int
    sft: SftSettings | None = None
    rl: RlSettings | None = None
    path: ClassVar[str] = "train"
    unread: ClassVar[frozenset[str]] = frozenset({"threads", "resources", "checkpoints_per_epoch"})
    nested: ClassVar[dict] = {"sft": SftSettings, "rl": RlSettings}

    @classmethod
    def of(cls, cfg, *need: str) -> TrainSettings:
        s = super().of(cfg)
        absent = [n for n in need if getattr(s, n) is None]
        if absent:
            raise ConfigError(f"train: missing key {', '.join(map(repr, absent))}")
        return s

    def as_dict(self) -> dict:
        """Plain JSON-stable dict, absent parts left out: the resume fingerprint and the
        accelerate launch spec, which rebuilds these settings with from_config."""
        return _plain({k: v for k, v in dataclasses.asdict(self).items() if not (k in self.nested and v is None)})


# The sections config validation builds from the full config, so that they fail before any job.
SECTIONS: dict[str, type[Section]] = {"drift": DriftSettings, "activations": ActivationSettings, "probe": ProbeSettings,
                                      "eval": EvalSettings, "select": SelectSettings, "intervene": InterveneSettings,
                                      "train": TrainSettings, "base": BaseSettings}


# --- dictionaries.online (the DictionaryConfig lives beside the architectures) ---------------------

@dataclasses.dataclass(frozen=True)
class OnlineSettings(Section):
    """The corpus and forward settings of an online dictionary source (activations.online)."""

    corpus: tuple
    seq_len: int
    batch_size: int
    device: str
    dtype: str
    path: ClassVar[str] = "dictionaries.online"

    def __post_init__(self):
        if not self.corpus:
            raise ConfigError("dictionaries.online.corpus: empty, but dictionaries.source is online")
