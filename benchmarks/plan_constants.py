"""The per-family constants of featdrift.plan, measured on CPU with transformers' tiny models.

Usage: python benchmarks/plan_constants.py

- parameter counts: featdrift.plan.Card.params against the instantiated models (tiny ones, and the
  KNOWN hub models built on the meta device: their exact size without a download);
- activation bytes: what a training forward saves for backward (autograd's saved-tensor hooks, one
  count per storage, weights excluded), per token as the slope between two sequence lengths, with
  float32 weights and with or without bf16 autocast (train.bf16), with and without gradient
  checkpointing; a least-squares fit over shapes gives the coefficients of featdrift.plan.ACT, and
  the table shows how far the rounded constants are from every measurement.
What a CPU cannot show: CUDA's autocast casts a few ops differently, and allocator overhead and
transient buffers (logit gradients, recomputation) come on top of the saved tensors.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from featdrift.plan import KNOWN, Card, card_from_hf, hf_config  # noqa: E402

warnings.filterwarnings("ignore")
# (d_model, d_ff, heads, head_dim, kv heads, vocab, layers): query, key/value and width vary apart
SHAPES = [(64, 256, 4, 16, 2, 512, 1), (64, 256, 4, 16, 2, 512, 2), (96, 160, 2, 32, 1, 384, 1),
          (96, 160, 2, 32, 1, 384, 2), (64, 320, 8, 16, 4, 256, 2), (128, 256, 2, 48, 2, 640, 1),
          (32, 96, 4, 16, 4, 320, 3), (80, 200, 5, 8, 1, 448, 2), (48, 128, 3, 24, 3, 300, 2),
          (112, 224, 7, 16, 7, 200, 1), (64, 192, 2, 64, 2, 256, 2), (96, 288, 6, 32, 2, 512, 3)]


def build(card: Card, device: str = "cpu"):
    """transformers' model of `card`'s family and shape (random weights)."""
    import transformers

    transformers.logging.set_verbosity_error()
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    cls, model = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM)}.get(
        card.family, (LlamaConfig, LlamaForCausalLM))
    cfg = cls(vocab_size=card.vocab, hidden_size=card.d_model, intermediate_size=card.d_ff, num_hidden_layers=card.n_layers,
              num_attention_heads=card.n_heads, num_key_value_heads=card.n_kv_heads, head_dim=card.head_dim,
              max_position_embeddings=256, tie_word_embeddings=card.tied)
    with torch.device(device):
        return model(cfg)


def saved_bytes(model, batch: int, seq: int, bf16: bool) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    ids = torch.randint(0, model.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        model(input_ids=ids, labels=ids)
    return sum(seen.values())


def act_bytes_per_token(card: Card, bf16: bool, checkpointing: bool) -> float:
    """Measured bytes saved for backward per token (sequence lengths 32 and 64, batch 2)."""
    torch.manual_seed(0)
    model = build(card)
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    return (saved_bytes(model, 2, 64, bf16) - saved_bytes(model, 2, 32, bf16)) / 64


def main() -> None:
    print("parameters: featdrift.plan.Card.params against transformers' models")
    for name in KNOWN:
        card = card_from_hf(*hf_config(name))
        n = sum(p.numel() for p in build(card, "meta").parameters())
        print(f"  {name:<26} {n:>14,d} built on the meta device, {card.params:>14,d} planned")
    for family in ("llama", "qwen2", "qwen3"):
        cards = [Card(family, d, L, ff, h, kv, hd, V, False) for d, ff, h, hd, kv, V, L in SHAPES]
        off = max(abs(sum(p.numel() for p in build(c).parameters()) - c.params) for c in cards)
        print(f"  {family:<6} {len(cards)} tiny shapes: planned counts off by at most {off}")
    print("activation bytes per token: fitted coefficients, and how far featdrift.plan.ACT is from each measurement")
    for family in ("llama", "qwen2", "qwen3"):
        cards = [Card(family, d, L, ff, h, kv, hd, V, False) for d, ff, h, hd, kv, V, L in SHAPES]
        X = np.array([[c.n_layers * c.d_model, c.n_layers * c.d_ff, c.n_layers * c.q, c.n_layers * c.kv,
                       c.n_layers * c.n_heads, c.vocab, c.d_model, c.head_dim] for c in cards], float)
        for bf16 in (True, False):
            for gc in (False, True):
                y = np.array([act_bytes_per_token(c, bf16, gc) for c in cards])
                coef = np.linalg.lstsq(X, y, rcond=None)[0]
                # checkpointed: the plan adds the block recomputed during backward, which no hook sees
                plan = np.array([c.act_bytes(bf16, gc) - (c.block_act_bytes(bf16) if gc else 0) for c in cards])
                print(f"  {family:<6} {'bf16' if bf16 else 'fp32'} {'checkpointed' if gc else 'plain':<12} per block "
                      f"(d, d_ff, q, kv, heads) {np.round(coef[:5], 1)}, once (vocab, d, head_dim) {np.round(coef[5:], 1)}; "
                      f"ACT off by <= {np.abs(plan - y).max():.0f} B of {y.min():.0f}-{y.max():.0f} B")


if __name__ == "__main__":
    main()
