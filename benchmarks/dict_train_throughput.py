"""Dictionary training throughput and achieved GFLOP/s against a plain torch matmul of the same shapes.

    python benchmarks/dict_train_throughput.py [--d 128] [--latents 512] [--models 1] [--k 16] [--tokens 400000]
                                               [--batch-size 1024] [--dtype float16] [--repeats 3] [--threads 1]

Synthetic paired shards (d, M; written like the activations rule writes them, float16 by
default) are streamed by the real trainer. FLOPs per token of one step, counting only
what the trainer computes: encoder forward 2*M*d*n, decoder forward 2*n*M*d, decoder
backward 4*n*M*d (grad of the code and of W_dec), encoder backward 2*M*d*n (grad of
W_enc; the input needs no gradient): 10*M*d*n. The reference runs the same five
matmuls ((B, M*d) x (M*d, n), (B, n) x (n, M*d), and the three backward products) in
plain torch in the same process, before and after each training run; a run's ratio
uses the faster of the two (the stricter one). AuxK FLOPs (dead latents only, off by
default, see --dead-tokens) and the elementwise work are not counted.
Each repeat trains from scratch; the figures are medians over repeats (all printed). The
ratio is also given by process CPU time (all threads of the process, pyarrow's included),
which time spent waiting for other jobs on a shared machine does not inflate.
Target (issue 4): trainer GFLOP/s >= 50% of the plain matmuls. With --arch topk the decoder is
sparse past the encoder's forward matmul (B*k rows, not B*n, in the decoder and the encoder's backward),
so the dense FLOP count overstates its work: compare tokens/s, against --arch topk --dense-decode (the
dense step on the (B, n) code, DenseTopKTraining) and --arch batchtopk.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.acts import sparse_data  # noqa: E402

from featdrift.activations.store import ActivationStore, act_batch, act_schema, shard_writer  # noqa: E402
from featdrift.dictionaries.train import train_dictionary  # noqa: E402


def write_shards(root: Path, xs: np.ndarray, dtype: str, n_shards: int, rows_per_group: int, seq_len: int = 32):
    """xs (N, M, d) as M models' paired shards, with the activations rule's writer and dtype."""
    N, M, d = xs.shape
    seq = (np.arange(N) // seq_len).astype(np.int32)
    pos = (np.arange(N) % seq_len).astype(np.int32)
    bounds = np.linspace(0, N, n_shards + 1).astype(int)
    out = []
    for m in range(M):
        paths = []
        for i in range(n_shards):
            a, b = bounds[i], bounds[i + 1]
            meta = {"model": f"m{m}", "layer": 0, "hook": "resid_post", "d_model": d, "dtype": dtype,
                    "tokenizer_hash": "synthetic", "probe_hash": "synthetic", "shard": i, "n_shards": n_shards,
                    "n_rows": b - a}
            schema = act_schema(d, dtype, meta)
            p = root / f"m{m}" / f"part-{i}.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            with shard_writer(p, schema) as w:
                for g in range(a, b, rows_per_group):
                    h = min(b, g + rows_per_group)
                    w.write_batch(act_batch(schema, seq[g:h], pos[g:h], np.zeros(h - g, np.int32),
                                            xs[g:h, m].astype(dtype)))
            paths.append(str(p))
        out.append(paths)
    return out


def matmul_gflops(B: int, Md: int, n: int, reps: int) -> tuple[float, float]:
    """The trainer's five matmuls per step, plain torch: (GFLOP/s by wall clock, by process CPU time)."""
    x, W, f, G = torch.randn(B, Md), torch.randn(Md, n), torch.randn(B, n), torch.randn(n, Md)
    gy = torch.randn(B, Md)
    for _ in range(2):
        x @ W
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        x @ W; f @ G  # forward: encoder, decoder
        gy @ G.T; f.T @ gy  # decoder backward (grad f, grad W_dec)
        x.T @ f  # encoder backward (grad W_enc; no grad of the input)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return 10 * B * Md * n * reps / dt / 1e9, 10 * B * Md * n * reps / dc / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--latents", type=int, default=512)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--arch", default="batchtopk")
    ap.add_argument("--tokens", type=int, default=400000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dense-decode", action="store_true",
                    help="topk: the dense step (DenseTopKTraining: (B, n) code, dense decoder and encoder backward), "
                         "the sparse step's baseline")
    ap.add_argument("--dead-tokens", type=int, default=10**12,
                    help="AuxK trigger; the default keeps AuxK off so that 10*M*d*n FLOPs/token is exact (AuxK adds work on dead latents, not counted)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.dense_decode:
        from featdrift.dictionaries.arch import get
        from featdrift.dictionaries.arch.topk import DenseTopKTraining

        get("topk").training = DenseTopKTraining
    tmp = Path(tempfile.mkdtemp())
    xs, _ = sparse_data(32768, a.d, 2 * a.latents, a.k, n_models=a.models)
    shards = write_shards(tmp, xs, a.dtype, n_shards=4, rows_per_group=2048)
    cfg = {"arch": a.arch, "n_latents": a.latents, "k": a.k, "l1_coeff": 1.0, "l1_warmup": 0.05, "lr": 2e-3,
           "tokens": a.tokens, "batch_size": a.batch_size, "buffer_rows": 16384, "aux_k": 256, "aux_coeff": 1 / 32,
           "dead_tokens": a.dead_tokens, "holdout_every": 10, "scale_rows": 4096, "calib_rows": 4096}
    flops_per_token = 10 * a.models * a.d * a.latents
    runs = []
    for _ in range(a.repeats):
        ref_before = matmul_gflops(a.batch_size, a.models * a.d, a.latents, 20)
        t0, c0 = time.perf_counter(), time.process_time()
        train_dictionary(ActivationStore(shards), [f"m{m}" for m in range(a.models)], cfg, seed=0, threads=a.threads)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        ref_after = matmul_gflops(a.batch_size, a.models * a.d, a.latents, 20)
        tps = a.tokens / dt
        gflops = flops_per_token * tps / 1e9
        gflops_cpu = flops_per_token * a.tokens / dc / 1e9
        ref = max(ref_before[0], ref_after[0])
        ref_cpu = max(ref_before[1], ref_after[1])
        runs.append({"s": dt, "tps": tps, "gflops": gflops, "ref": ref, "ratio": gflops / ref,
                     "cpu_s": dc, "gflops_cpu": gflops_cpu, "ref_cpu": ref_cpu, "ratio_cpu": gflops_cpu / ref_cpu})
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"arch {a.arch}{' (dense decode)' if a.dense_decode else ''} M {a.models} dead_tokens {a.dead_tokens} d {a.d} n_latents {a.latents} k {a.k} "
          f"batch {a.batch_size} tokens {a.tokens} shards {a.dtype} threads {a.threads} repeats {a.repeats}")
    for i, r in enumerate(runs):
        print(f"  run {i}: wall {r['s']:.2f} s  {r['tps']:,.0f} tokens/s  {r['gflops']:.2f} GFLOP/s  "
              f"matmul {r['ref']:.2f} GFLOP/s  ratio {r['ratio']:.0%}  |  CPU time {r['cpu_s']:.2f} s  "
              f"{r['gflops_cpu']:.2f} GFLOP/s  matmul {r['ref_cpu']:.2f}  ratio {r['ratio_cpu']:.0%}")
    print(f"training (median): {med['tps']:,.0f} tokens/s  {med['gflops']:.2f} GFLOP/s at {flops_per_token:,} FLOP/token "
          f"(incl. streaming, calibration)")
    print(f"plain matmul, same shapes (median): {med['ref']:.2f} GFLOP/s")
    print(f"ratio by process CPU time (median of runs; steadier on a shared machine): {med['ratio_cpu']:.0%}")
    print(f"ratio (median of runs): {med['ratio']:.0%} (target >= 50%)")
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
