"""The pooled per-model readout fbar_k^m(x): the mean over a prompt's tokens of f_k^m at the dictionary's layer."""

from __future__ import annotations

import torch

from ..activations.capture import pad_batch, run_capture
from ..dictionaries import Dictionary


@torch.no_grad()
def pooled_readout(model, tok, prompts: list[str], D: Dictionary, dict_model: str, layer: int,
                   batch_size: int = 32) -> torch.Tensor:
    """(len(prompts), n_latents). Prompts are tokenized as lm-eval's HFLM does (no special tokens added)."""
    seqs = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = torch.zeros(len(seqs), D.n)
    for b in range(0, len(seqs), batch_size):
        ids, lengths = pad_batch(seqs[b : b + batch_size], pad)
        h = run_capture(model, ids, [layer])[layer].float()
        f = D.encode_model(dict_model, h)  # (B, T, n)
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).float()
        out[b : b + len(ids)] = (f * mask[..., None]).sum(1) / lengths[:, None].float()
    return out
