"""Base stage throughput: task generation (items/s) and pretraining (ms/step, tokens/s).

Usage: python benchmarks/bench_base.py [--steps N] [--threads T]
Uses the embedded default's model and batch shape from config.yaml.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from featdrift.config import load_schema, validate
from featdrift.models.pretrain import pretrain
from featdrift.tasks.corpus import build_corpus
from featdrift.tasks.registry import TASKS, draw_unique

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cfg = validate(yaml.safe_load((ROOT / "config.yaml").read_text()), load_schema(ROOT / "schemas/config.schema.yaml"))
    params = cfg["data"]["params"]

    t = time.perf_counter()
    n = 0
    for task in TASKS:
        n += len(draw_unique(task, 0, 2000, params=params.get(task, {})))
    dt = time.perf_counter() - t
    print(f"task generation: {n} items in {dt:.2f} s = {n / dt:,.0f} items/s")

    t = time.perf_counter()
    corpus = build_corpus(cfg["base"]["pretrain"]["corpus"], 0, set(), params)
    print(f"corpus: {len(corpus)} documents in {time.perf_counter() - t:.2f} s")

    pre = dict(cfg["base"]["pretrain"]["train"], steps=args.steps, warmup=1)
    t = time.perf_counter()
    model, _, curve = pretrain(corpus, cfg["base"]["pretrain"]["model"], pre, 0, args.threads)
    dt = time.perf_counter() - t
    tokens = args.steps * pre["batch_size"] * pre["seq_len"]
    print(f"pretrain: {sum(p.numel() for p in model.parameters()):,} parameters, {args.steps} steps in {dt:.1f} s = "
          f"{1000 * dt / args.steps:.0f} ms/step, {tokens / dt:,.0f} tokens/s ({args.threads} threads); "
          f"full default ({cfg['base']['pretrain']['train']['steps']} steps) ~ {dt / args.steps * cfg['base']['pretrain']['train']['steps']:.0f} s")


if __name__ == "__main__":
    main()
