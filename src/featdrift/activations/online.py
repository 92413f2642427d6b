"""The online activation source: a dictionary's training rows computed by its own models, on demand.

At paper scale the store cannot hold what a dictionary trains on (400M tokens x 2560 x 2 bytes is
2 TB per model, and a pairwise crosscoder reads two models). The online source loads the M models,
cuts a mixed corpus into sequences up to the token budget, and for one unit (a batch of sequences)
returns the M models' block-L outputs on the same tokens. It has the ActivationStore's interface
(units, read, iteration), so the trainer, its shuffle buffer and the held-out split are the same
for both sources, and the same token stream gives the same dictionary from either
(tests/unit/activations/test_online.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..models.load import load_model
from ..settings import OnlineSettings
from ..tasks.registry import rng_for
from .capture import batch_acts
from .probe import tokenizer_hash

log = logging.getLogger(__name__)
CHUNK_DOCS = 256  # documents tokenized per call (the fast tokenizer batches them in Rust)


def _column_batches(src: dict) -> Iterator[list]:
    """The source's `column` in batches of rows: local Parquet streamed by pyarrow, else a hub dataset."""
    name, column = src["path"], src.get("column", "text")
    if Path(name).exists():
        import pyarrow.dataset as ds

        data = ds.dataset(name, format="parquet")
        if column not in data.schema.names:
            raise ValueError(f"{name}: no column {column!r} (dictionaries.online.corpus; has {data.schema.names})")
        for batch in data.to_batches(columns=[column], batch_size=CHUNK_DOCS):
            yield batch.column(0).to_pylist()
        return
    import datasets

    try:  # streamed: the corpus is read once, in order, and only its first `budget` tokens are used
        data = datasets.load_dataset(name, src.get("name"), split=src.get("split", "train"), streaming=True)
        rows = iter(data.select_columns([column]).batch(CHUNK_DOCS))
        first = next(rows, None)
    except Exception as e:  # offline, unknown id, missing split or column: one line naming the source
        raise ValueError(f"{name}: cannot load the corpus source (dictionaries.online.corpus, column {column!r}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    while first is not None:
        yield first[column]
        first = next(rows, None)


def _documents(src: dict, tok, seq_len: int) -> Iterator[list[int]]:
    """A source's documents as token ids cut to seq_len; text is tokenized as the probe set is."""
    for rows in _column_batches(src):
        if rows and isinstance(rows[0], str):
            rows = tok(rows, add_special_tokens=True)["input_ids"]
        for ids in rows:
            if ids is not None and len(ids) >= 2:
                yield list(ids[:seq_len])


def corpus_sequences(corpus, tok, seq_len: int, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, offsets): sequences of the mixed corpus until `budget` tokens, sequence i being
    ids[offsets[i]:offsets[i + 1]]. Each next document comes from a source drawn by weight from
    a seeded stream; an exhausted source leaves the mixture."""
    streams = [_documents(s, tok, seq_len) for s in corpus]
    weights = [float(s.get("weight", 1.0)) for s in corpus]
    rng = rng_for(seed, "online-corpus")
    ids, lengths, total = [], [0], 0
    live = list(range(len(streams)))
    while total < budget and live:
        r = rng.random() * sum(weights[i] for i in live)
        pick = live[-1]
        for i in live:
            r -= weights[i]
            if r < 0:
                pick = i
                break
        doc = next(streams[pick], None)
        if doc is None:
            live.remove(pick)
            continue
        ids.append(np.asarray(doc, dtype=np.int32))
        lengths.append(len(doc))
        total += len(doc)
    if not ids:
        raise ValueError(f"dictionaries.online.corpus: no document of two tokens or more in "
                         f"{', '.join(s['path'] for s in corpus)}")
    if total < budget:
        log.warning("corpus holds %d tokens, below the budget of %d: training passes over it more than once",
                    total, budget)
    return np.concatenate(ids), np.cumsum(lengths)


class OnlineSource:
    """M models' block-`layer` outputs on a corpus, a batch of sequences at a time (see the module doc).

    A unit is (first sequence, None, rows); seq_ids are sequence indices in corpus order, so the
    held-out split (every n-th sequence) means what it means for the store."""

    def __init__(self, model_paths: list[str], models: list[str], layer: int, cfg: OnlineSettings | dict,
                 tokens: int, seed: int, trust_remote_code: bool = False):
        cfg = OnlineSettings.of(cfg)
        self.models, self.layer = list(models), layer
        self.lms, tok, ref = [], None, None
        for name, path in zip(models, model_paths):
            model, t = load_model(path, trust_remote_code=trust_remote_code, dtype=cfg.dtype)
            h = tokenizer_hash(t)
            if ref is not None and h != ref:
                raise ValueError(f"tokenizer of model {name!r} ({path}) differs from model {models[0]!r}'s "
                                 f"({model_paths[0]}): their activations would not pair")
            ref, tok = ref or h, tok or t
            self.lms.append(model.to(cfg.device))
        self.pad_id = tok.pad_token_id
        self.d_model = self.lms[0].config.hidden_size
        self.ids, self.offsets = corpus_sequences(cfg.corpus, tok, cfg.seq_len, tokens, seed)
        n_seq, B = len(self.offsets) - 1, cfg.batch_size
        self.units = [(b, None, int(self.offsets[min(b + B, n_seq)] - self.offsets[b])) for b in range(0, n_seq, B)]
        self.batch_size = B
        self.record = {"source": "online", "online": {**dataclasses.asdict(cfg), "corpus": [dict(c) for c in cfg.corpus],
                                                      "sequences": n_seq, "tokens": int(self.offsets[-1])}}
        self.n_rows = int(self.offsets[-1])
        log.info("online source: %d models, %d sequences, %d tokens, %d units", len(self.lms), n_seq,
                 self.n_rows, len(self.units))

    @property
    def n_models(self) -> int:
        return len(self.lms)

    def read(self, unit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, rows = unit
        stop = min(b + self.batch_size, len(self.offsets) - 1)
        seqs = [self.ids[self.offsets[i] : self.offsets[i + 1]].tolist() for i in range(b, stop)]
        lengths = torch.tensor([len(s) for s in seqs])
        x = torch.empty(rows, self.n_models, self.d_model)
        for m, model in enumerate(self.lms):
            x[:, m, :] = batch_acts(model, self.pad_id, seqs, [self.layer])[self.layer]
            if not torch.isfinite(x[:, m, :]).all():
                raise ValueError(f"model {self.models[m]!r}: NaN or inf activations at layer {self.layer} "
                                 f"(sequences {b}-{stop - 1} of the online corpus)")
        sid = torch.repeat_interleave(torch.arange(b, stop), lengths)
        pos = torch.cat([torch.arange(n) for n in lengths.tolist()])
        return sid, pos, x

    def __iter__(self):
        for u in self.units:
            yield self.read(u)
