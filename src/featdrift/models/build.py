"""The tiny Llama-architecture model built from config (Llama, not Qwen2: see README)."""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from ..settings import PretrainModelSettings


def tiny_llama(arch: PretrainModelSettings | dict, tok: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """`arch`: base.pretrain.model (tests pass the dict)."""
    arch = PretrainModelSettings.of(arch)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=arch.d_model,
        intermediate_size=arch.d_ff,
        num_hidden_layers=arch.n_layers,
        num_attention_heads=arch.n_heads,
        num_key_value_heads=arch.n_heads,
        max_position_embeddings=arch.max_len,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return LlamaForCausalLM(cfg)
