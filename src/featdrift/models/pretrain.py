"""Pretraining the tiny base model from scratch on the generated corpus (plain torch loop)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..determinism import set_determinism
from ..settings import PretrainModelSettings, PretrainTrainSettings
from .build import tiny_model
from .tokenizer import make_tokenizer


def token_stream(texts: list[str], tok) -> torch.Tensor:
    """All documents, each followed by EOS, as one long id tensor."""
    ids = tok(list(texts), add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    return torch.tensor([t for doc in ids for t in (*doc, eos)], dtype=torch.long)


def lr_at(step: int, total: int, warmup: int, lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(corpus: pd.DataFrame, arch: PretrainModelSettings | dict, train: PretrainTrainSettings | dict,
             seed: int, threads: int, tokenizer: str = "char", bpe_vocab: int = 512):
    """Returns (model, tokenizer, curve DataFrame). Deterministic for a fixed seed and thread count.

    `tokenizer`, `bpe_vocab`: base.pretrain's (a bpe tokenizer is trained on the corpus first)."""
    arch, train = PretrainModelSettings.of(arch), PretrainTrainSettings.of(train)
    set_determinism(threads, seed)
    texts = corpus["text"].tolist()
    tok = make_tokenizer(tokenizer, texts, bpe_vocab, arch.max_len)
    model = tiny_model(arch, tok)
    stream = token_stream(texts, tok)
    seq = train.seq_len
    n_chunks = (len(stream) - 1) // seq
    chunks = stream[: n_chunks * seq + 1]
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    order, cursor = torch.randperm(n_chunks, generator=gen), 0
    rows, steps, bs = [], train.steps, train.batch_size
    model.train()
    bar = tqdm(range(steps), desc="pretrain", mininterval=5)
    for step in bar:
        if cursor + bs > n_chunks:
            order, cursor = torch.randperm(n_chunks, generator=gen), 0
        idx = order[cursor : cursor + bs] * seq
        cursor += bs
        batch = torch.stack([chunks[i : i + seq + 1] for i in idx.tolist()])
        lr = lr_at(step, steps, train.warmup, train.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()
        rows.append((step, loss_value, lr))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss_value:.3f}")
    model.eval()
    curve = pd.DataFrame(rows, columns=["step", "loss", "lr"])
    curve["epoch"] = np.arange(len(curve)) * bs / n_chunks
    return model, tok, curve
