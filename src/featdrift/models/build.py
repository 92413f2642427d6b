"""The tiny model built from config: a Llama or Qwen family architecture at toy size.

`llama` (the default) is the model every earlier artifact was built with, unchanged; the
others carry what sets their family apart in the paper's models (Llama-3.1, Qwen2.5, Qwen3).
"""

from __future__ import annotations

from transformers import (LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

from ..settings import PretrainModelSettings

FAMILIES = ("llama", "llama3", "qwen2", "qwen3")


def _shape(arch: PretrainModelSettings, tok: PreTrainedTokenizerBase) -> dict:
    """The config keys every family shares (the tokenizer fixes the vocabulary and special ids)."""
    return dict(
        vocab_size=len(tok),
        hidden_size=arch.d_model,
        intermediate_size=arch.d_ff,
        num_hidden_layers=arch.n_layers,
        num_attention_heads=arch.n_heads,
        num_key_value_heads=arch.kv_heads,
        max_position_embeddings=arch.max_len,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def tiny_llama(arch: PretrainModelSettings | dict, tok: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """`arch`: base.pretrain.model (tests pass the dict)."""
    arch = PretrainModelSettings.of(arch)
    return LlamaForCausalLM(LlamaConfig(**_shape(arch, tok)))


def tiny_model(arch: PretrainModelSettings | dict, tok: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The model of base.pretrain.model.family, initialised from torch's global RNG."""
    arch = PretrainModelSettings.of(arch)
    if arch.family == "llama":
        return tiny_llama(arch, tok)
    shape = _shape(arch, tok)
    if arch.family == "llama3":  # Llama-3.1's RoPE: theta 500000; frequencies slower than the original
        # context (max_len / 8 here; 8192 of 131072 in Llama-3.1) are stretched 8x, smoothly in between.
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": max(1, arch.max_len // 8)}
        return LlamaForCausalLM(LlamaConfig(**shape, rope_parameters=rope))
    qwen_rope = {"rope_type": "default", "rope_theta": 1000000.0}  # Qwen2.5 and Qwen3
    if arch.family == "qwen2":  # bias on q/k/v is built into Qwen2's attention
        return Qwen2ForCausalLM(Qwen2Config(**shape, rope_parameters=qwen_rope))
    if arch.family == "qwen3":  # RMSNorm on q and k per head; head_dim is a key of its own (default 128)
        return Qwen3ForCausalLM(Qwen3Config(**shape, head_dim=arch.d_model // arch.n_heads, rope_parameters=qwen_rope))
    raise ValueError(f"base.pretrain.model.family: unknown family {arch.family!r} ({', '.join(FAMILIES)})")
