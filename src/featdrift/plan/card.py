"""The model side of the plan: a decoder-only transformer's shape (Card), from the pretrain config, a
config.json on disk or KNOWN, and the per-family constants measured here (benchmarks/plan_constants.py)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..config import ConfigError

# config.json fields (those Card reads) of the hub models of configs/*.yaml, as published.
KNOWN = {
    "Qwen/Qwen3-4B-Base": dict(model_type="qwen3", hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                               num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                               tie_word_embeddings=True, max_position_embeddings=32768),
    "Qwen/Qwen2.5-7B": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                            num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
                            max_position_embeddings=131072),
    "meta-llama/Llama-3.1-8B": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                    num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=128256,
                                    tie_word_embeddings=False, max_position_embeddings=131072),
}

# Bytes a training forward saves for backward, per token. Per block: coefficients of (d_model, d_ff,
# query dims, key/value dims, heads), keyed by (family, bf16 autocast); once per token (the loss's
# float32 logits, the final norm, the rotary tables): of (vocab, d_model, head_dim). Measured
# (benchmarks/plan_constants.py): autograd's saved tensors of transformers' tiny models on CPU (sdpa
# attention, float32 weights, with and without bf16 autocast), a least-squares fit over 12 shapes,
# rounded (off by < 50 bytes a token; checkpointed, < 4 x head_dim: the rotary tables are not kept).
# llama3 and qwen2 save what llama saves; qwen3 adds its q/k norms. With gradient checkpointing a block
# keeps only its float32 input (4 x d_model, measured), and one block at a time is recomputed in full
# during backward (assumed).
ACT = {("llama", True): (26, 8, 4, 4, 6), ("llama", False): (24, 16, 8, 8, 6),
       ("qwen3", True): (26, 8, 10, 10, 12), ("qwen3", False): (24, 16, 16, 16, 12)}
ACT_HEAD = {True: (4, 10, 4), False: (4, 12, 4)}
ACT_CHECKPOINTED = 4


@dataclasses.dataclass(frozen=True)
class Card:
    """A decoder-only transformer's shape, what its FLOPs and bytes follow from."""

    family: str  # llama, llama3, qwen2, qwen3 (another model type counts as llama)
    d_model: int
    n_layers: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    context: int | None = None  # positions the model takes (lm-eval's max_length)
    source: str = ""

    @property
    def q(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def block(self) -> int:
        """Parameters of one decoder block (transformers' Llama, Qwen2 and Qwen3 layers)."""
        d = self.d_model
        n = 2 * d * self.q + 2 * d * self.kv + 3 * d * self.d_ff + 2 * d
        return n + (self.q + 2 * self.kv if self.family == "qwen2" else 0) + (2 * self.head_dim if self.family == "qwen3" else 0)

    @property
    def params(self) -> int:
        return self.n_layers * self.block + self.vocab * self.d_model * (1 if self.tied else 2) + self.d_model

    @property
    def matmul_params(self) -> int:
        return self.n_layers * self.block + self.vocab * self.d_model  # the input embedding is a lookup

    def flops(self, tokens: float, attended: float, layers: int | None = None) -> float:
        """Forward FLOPs of `tokens` tokens attending to `attended` positions each on average: 2 per
        matmul weight, 4 per query dim and attended key; `layers`: blocks 0..layers-1 only, no head."""
        n = self.n_layers if layers is None else layers
        weights = n * self.block + (self.vocab * self.d_model if layers is None else 0)
        return tokens * (2 * weights + 4 * n * self.q * attended)

    def kv_bytes(self, dtype_bytes: int) -> int:
        return 2 * self.n_layers * self.kv * dtype_bytes

    def block_act_bytes(self, bf16: bool) -> int:
        """Bytes one block saves for backward per token (ACT)."""
        a = ACT[("qwen3" if self.family == "qwen3" else "llama", bf16)]
        return a[0] * self.d_model + a[1] * self.d_ff + a[2] * self.q + a[3] * self.kv + a[4] * self.n_heads

    def act_bytes(self, bf16: bool, checkpointing: bool) -> int:
        """Training activation bytes per token: the blocks' (checkpointed: their inputs, and one block
        recomputed) and the head's."""
        v, d, h = ACT_HEAD[bf16]
        block = self.block_act_bytes(bf16)
        body = self.n_layers * ACT_CHECKPOINTED * self.d_model + block if checkpointing else self.n_layers * block
        return body + v * self.vocab + d * self.d_model + h * self.head_dim


def _first(cfg: dict, *keys):
    return next((cfg[k] for k in keys if isinstance(cfg.get(k), int)), None)


def hf_config(name: str) -> tuple[dict, str] | None:
    """(config.json fields, where from) of a local model folder, a hub model in the local Hugging Face
    cache (no network), or KNOWN; None when none has it."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    snapshots = home / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    for path in [Path(name) / "config.json"] + found[-1:]:
        if path.is_file():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            return cfg.get("text_config") or cfg, str(path)
    return (KNOWN[name], "featdrift.plan.KNOWN") if name in KNOWN else None


def width(config: dict) -> int | None:
    """Residual width: the pretrain config, storage.d_model, or the model's config.json (None: unknown)."""
    base = config["base"]
    if not base.get("pretrained"):
        return base["pretrain"]["model"]["d_model"]
    if config.get("storage", {}).get("d_model"):
        return config["storage"]["d_model"]
    found = hf_config(base["pretrained"])
    return found and _first(found[0], "hidden_size", "d_model", "n_embd")


def model_card(config: dict) -> Card:
    """The base model's Card: the tiny model's from its section (vocabulary from its tokenizer), a
    hub model's from hf_config; a ConfigError where neither is known."""
    base = config["base"]
    if not base.get("pretrained"):
        pre, m = base["pretrain"], base["pretrain"]["model"]
        if pre.get("tokenizer", "char") == "bpe":
            vocab = pre["bpe_vocab"]
        else:
            from ..models.tokenizer import CHARS, SPECIALS
            vocab = len(SPECIALS) + len(CHARS)
        return Card(m.get("family", "llama"), m["d_model"], m["n_layers"], m["d_ff"], m["n_heads"],
                    m.get("n_kv_heads") or m["n_heads"], m["d_model"] // m["n_heads"], vocab, True, m["max_len"],
                    "base.pretrain.model")
    found = hf_config(base["pretrained"])
    if found is None:
        raise ConfigError(f"base.pretrained: the shape of {base['pretrained']!r} is unknown (no config.json on disk, "
                          "not in featdrift.plan.KNOWN): download its config.json or add it to KNOWN")
    return card_from_hf(*found)


def card_from_hf(c: dict, where: str) -> Card:
    """The Card of a transformers config.json."""
    try:
        d, heads = _first(c, "hidden_size", "d_model", "n_embd"), _first(c, "num_attention_heads", "n_head")
        return Card(c.get("model_type", "llama"), d, _first(c, "num_hidden_layers", "n_layer"),
                    _first(c, "intermediate_size", "n_inner") or 4 * d, heads, c.get("num_key_value_heads") or heads,
                    c.get("head_dim") or d // heads, c["vocab_size"], bool(c.get("tie_word_embeddings", False)),
                    _first(c, "max_position_embeddings", "n_positions", "n_ctx"), where)
    except (KeyError, TypeError) as e:
        raise ConfigError(f"base.pretrained: {where} lacks a field the plan needs ({e})") from None
