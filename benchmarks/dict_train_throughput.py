"""Dictionary training throughput and achieved GFLOP/s against a plain torch matmul of the same shapes.

    python benchmarks/dict_train_throughput.py [--d 128] [--latents 512] [--models 1] [--k 16] [--tokens 200000]

Synthetic paired shards (d, M) are streamed by the real trainer. FLOPs per token of one
step: encoder 2*M*d*n, decoder 2*n*M*d, backward twice the forward: 12*M*d*n. The
reference runs the same six matmuls ((B, M*d) x (M*d, n) and (B, n) x (n, M*d), forward
and the two backward products each) in plain torch in the same process.
Target (issue 4): trainer GFLOP/s >= 50% of the plain matmuls.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers_acts import sparse_data, write_synthetic_shards  # noqa: E402

from featdrift.activations.store import ActivationStore  # noqa: E402
from featdrift.dictionaries.train import train_dictionary  # noqa: E402


def matmul_gflops(B: int, Md: int, n: int, reps: int) -> float:
    x, W, f, G = torch.randn(B, Md), torch.randn(Md, n), torch.randn(B, n), torch.randn(n, Md)
    gy = torch.randn(B, Md)
    for _ in range(2):
        x @ W
    t0 = time.perf_counter()
    for _ in range(reps):
        x @ W; f @ G  # forward
        gy @ G.T; f.T @ gy  # decoder backward (grad f, grad W_dec)
        f @ W.T; x.T @ f  # encoder backward (grad x, grad W_enc)
    dt = time.perf_counter() - t0
    return 12 * B * Md * n * reps / dt / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--latents", type=int, default=512)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--arch", default="batchtopk")
    ap.add_argument("--tokens", type=int, default=200000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dead-tokens", type=int, default=10**12,
                    help="AuxK trigger; the default keeps AuxK off so that 12*M*d*n FLOPs/token is exact (AuxK adds up to 6*M*d*n)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp())
    xs, _ = sparse_data(32768, a.d, 2 * a.latents, a.k, n_models=a.models)
    shards = write_synthetic_shards(tmp, xs, [f"m{m}" for m in range(a.models)], n_shards=4, rows_per_group=2048)
    cfg = {"arch": a.arch, "n_latents": a.latents, "k": a.k, "l1_coeff": 1.0, "l1_warmup": 0.05, "lr": 2e-3,
           "tokens": a.tokens, "batch_size": a.batch_size, "buffer_rows": 16384, "aux_k": 256, "aux_coeff": 1 / 32,
           "dead_tokens": a.dead_tokens, "holdout_every": 10, "scale_rows": 4096, "calib_rows": 4096}
    ref_before = matmul_gflops(a.batch_size, a.models * a.d, a.latents, 20)
    t0 = time.perf_counter()
    train_dictionary(ActivationStore(shards), [f"m{m}" for m in range(a.models)], cfg, seed=0, threads=a.threads)
    dt = time.perf_counter() - t0
    ref_after = matmul_gflops(a.batch_size, a.models * a.d, a.latents, 20)
    ref = max(ref_before, ref_after)
    tps = a.tokens / dt
    gflops = 12 * a.models * a.d * a.latents * tps / 1e9
    print(f"arch {a.arch} M {a.models} dead_tokens {a.dead_tokens} d {a.d} n_latents {a.latents} k {a.k} batch {a.batch_size} tokens {a.tokens} threads {a.threads}")
    print(f"training: {dt:.2f} s  {tps:,.0f} tokens/s  {gflops:.2f} GFLOP/s (incl. streaming, calibration)")
    print(f"plain matmul, same shapes: {ref:.2f} GFLOP/s (before {ref_before:.2f}, after {ref_after:.2f})")
    print(f"ratio: {gflops / ref:.0%} (target >= 50%)")


if __name__ == "__main__":
    main()
