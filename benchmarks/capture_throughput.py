"""Capture throughput: our capture vs the forward pass alone vs the naive way, on the same batches.

    python benchmarks/capture_throughput.py [--model DIR] [--tokens N] [--layer L] [--threads T]

Without --model, a randomly initialized model of the embedded default's shape is used
(throughput does not depend on the weights). Prints tokens/s of:
  forward      full forward pass, no hooks (the reference)
  capture      our write_shards (model already loaded): hook, early stop after layer L, float16 Parquet;
               the forward passes group each batch's sequences by length (less padding computed)
  capture_full the same without the early stop
  naive        output_hidden_states=True, then a pandas DataFrame (one row per token) to Parquet
Targets (issue 4): capture overhead over the forward <= 15%; capture >= 2x naive.
Each repeat times all four back to back; the figures are the medians over repeats of
tokens/s and of the per-repeat ratios (all repeats printed), so that a burst of other
load on the machine moves one repeat, not the result.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from featdrift.activations.capture import length_chunks, pad_batch, write_shards
from featdrift.activations.probe import build_probe, read_probe, write_probe
from featdrift.io import write_parquet
from featdrift.models.build import tiny_llama
from featdrift.models.load import load_model
from featdrift.models.tokenizer import char_tokenizer
from featdrift.tasks.registry import draw_unique

ROOT = Path(__file__).resolve().parents[1]


def default_model(tmp: Path) -> Path:
    arch = yaml.safe_load((ROOT / "config.yaml").read_text())["base"]["pretrain"]["model"]
    tok = char_tokenizer(arch["max_len"])
    torch.manual_seed(0)
    tiny_llama(arch, tok).save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    return tmp / "model"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--tokens", type=int, default=30000)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp())
    model_dir = Path(a.model) if a.model else default_model(tmp)
    model, tok = load_model(model_dir)
    files = {}
    for task in ("arithmetic", "compare"):
        files[task] = tmp / f"{task}.parquet"
        write_parquet(files[task], pd.DataFrame(draw_unique(task, 0, 400)))
    table, meta = build_probe(files, tok, {"n_tokens": a.tokens, "seq_len": 64, "generic_share": 0.3}, 0)
    write_probe(tmp / "probe.parquet", table, meta)
    probe, _ = read_probe(tmp / "probe.parquet")
    seqs = probe.column("token_ids").to_pylist()
    batches = [pad_batch(seqs[b : b + a.batch_size], tok.pad_token_id) for b in range(0, len(seqs), a.batch_size)]
    n_tok = sum(len(s) for s in seqs)
    cfg = {"shards": 1, "dtype": "float16", "batch_size": a.batch_size, "device": "cpu"}

    def forward():
        with torch.inference_mode():
            for ids, _ in batches:
                model(input_ids=ids, use_cache=False)

    meta = {"model": "bench", "hook": "resid_post", "d_model": model.config.hidden_size, "dtype": "float16",
            "tokenizer_hash": meta["tokenizer_hash"], "probe_hash": meta["probe_hash"], "shard": 0, "n_shards": 1,
            "n_rows": n_tok}
    seq_ids = probe.column("seq_id").to_numpy()

    def capture():
        write_shards(model, tok.pad_token_id, seq_ids, seqs, [a.layer], meta, a.batch_size, {a.layer: str(tmp / "c.parquet")})

    def capture_full():
        write_shards(model, tok.pad_token_id, seq_ids, seqs, [a.layer], meta, a.batch_size,
                     {a.layer: str(tmp / "cf.parquet")}, stop_early=False)

    def naive():
        rows = []
        with torch.inference_mode():
            for b, (ids, lengths) in enumerate(batches):
                hs = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states[a.layer + 1]
                for r in range(len(ids)):
                    for p in range(int(lengths[r])):
                        rows.append({"seq_id": b * a.batch_size + r, "pos": p, "token_id": int(ids[r, p]),
                                     "act": hs[r, p].half().numpy().tolist()})
        pd.DataFrame(rows).to_parquet(tmp / "naive.parquet")

    fns = {"forward": forward, "capture": capture, "capture_full": capture_full, "naive": naive}
    names = list(fns)
    times = {k: [] for k in fns}
    for r in range(a.repeats):
        # Every repeat runs all four back to back (in a rotated order, so that none always runs first):
        # the ratios of one repeat share the machine's load at that moment.
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    tps = {k: [n_tok / t for t in v] for k, v in times.items()}
    med = statistics.median

    def fmt(xs, spec):
        return ", ".join(format(x, spec) for x in xs)

    print(f"model {model_dir} d_model {model.config.hidden_size} layers {model.config.num_hidden_layers} "
          f"capture layer {a.layer}; {n_tok} tokens in {len(batches)} batches of {a.batch_size}; threads {a.threads}; "
          f"{a.repeats} repeats")
    for name, v in tps.items():
        print(f"{name:13s} {med(v):10.0f} tokens/s median   (repeats: {fmt(v, '.0f')})")
    over = [tc / tf - 1 for tf, tc in zip(times["forward"], times["capture"])]
    over_full = [tc / tf - 1 for tf, tc in zip(times["forward"], times["capture_full"])]
    speed = [tn / tc for tc, tn in zip(times["capture"], times["naive"])]
    print(f"capture overhead vs forward (hook + float16 Parquet, forward stopped after layer L): {med(over):+.1%} median "
          f"(repeats: {fmt(over, '+.1%')}; target <= +15%)")
    print(f"capture_full overhead vs forward (hook + Parquet, no early stop):     {med(over_full):+.1%} median "
          f"(repeats: {fmt(over_full, '+.1%')})")
    slots = sum(ids.numel() for ids, _ in batches)
    slots_ours = sum(len(c) * max(len(seqs[b + i]) for i in c) for b in range(0, len(seqs), a.batch_size)
                     for c in length_chunks([len(s) for s in seqs[b : b + a.batch_size]]))
    print(f"token slots computed per pass over the data: forward and naive {slots} ({n_tok / slots:.0%} real tokens), "
          f"capture {slots_ours} ({n_tok / slots_ours:.0%} real) in {sum(len(length_chunks([len(s) for s in seqs[b : b + a.batch_size]])) for b in range(0, len(seqs), a.batch_size))} forward passes")
    print(f"capture speed-up vs naive: {med(speed):.2f}x median (repeats: {fmt(speed, '.2f')}; target >= 2x)")

if __name__ == "__main__":
    main()
