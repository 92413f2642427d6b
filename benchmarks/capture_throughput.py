"""Capture throughput: our capture vs the forward pass alone vs the naive way, on the same batches.

    python benchmarks/capture_throughput.py [--model DIR] [--tokens N] [--layer L] [--threads T]

Without --model, a randomly initialized model of the embedded default's shape is used
(throughput does not depend on the weights). Prints tokens/s of:
  forward      full forward pass, no hooks (the reference)
  capture      our write_shards (model already loaded): hook, early stop after layer L, float16 Parquet
  capture_full the same without the early stop (hook overhead alone)
  naive        output_hidden_states=True, then a pandas DataFrame (one row per token) to Parquet
Targets (issue 4): capture overhead over the forward <= 15%; capture >= 2x naive.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from featdrift.activations.capture import pad_batch, write_shards
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
    ap.add_argument("--repeats", type=int, default=5)
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
    times = {k: [] for k in fns}
    for r in range(a.repeats):  # interleaved, best of `repeats`: robust to other load on the machine
        for name, fn in fns.items():
            if name == "naive" and r > 0 and r % 2:
                continue
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    res = {k: n_tok / min(v) for k, v in times.items()}
    print(f"model {model_dir} d_model {model.config.hidden_size} layers {model.config.num_hidden_layers} "
          f"capture layer {a.layer}; {n_tok} tokens in {len(batches)} batches; threads {a.threads}")
    for name, tps in res.items():
        print(f"{name:13s} {tps:12.0f} tokens/s")
    print(f"capture overhead vs forward (hook + float16 Parquet, forward stopped after layer L): {res['forward'] / res['capture'] - 1:+.1%} (target <= +15%)")
    print(f"capture_full overhead vs forward (hook + Parquet, no early stop):     {res['forward'] / res['capture_full'] - 1:+.1%}")
    print(f"capture speed-up vs naive: {res['capture'] / res['naive']:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
