"""Peak RSS of dictionary training on 1x and 8x the shards (same training tokens).

    python benchmarks/dict_train_rss.py [--shards 2] [--rows-per-shard 16384] [--d 128]

Each run is a fresh subprocess; its peak RSS (ru_maxrss) is reported. Memory should
not grow with the number of shards: the trainer keeps one shuffle buffer and one
row group per model. Target (issue 4): the two peaks within 10% of each other.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()


def child(n_shards: int, rows: int, d: int, latents: int, tokens: int) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    import numpy as np
    import torch
    from helpers.acts import write_synthetic_shards
    from featdrift.activations.store import ActivationStore
    from featdrift.dictionaries.train import train_dictionary

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    g = np.random.default_rng(0)
    paths = []
    for i in range(n_shards):  # write shard by shard, so writing never holds more than one shard
        xs = g.standard_normal((rows, 1, d)).astype(np.float32)
        p = write_synthetic_shards(tmp / f"s{i}", xs, ["base"], n_shards=1, rows_per_group=2048)[0][0]
        paths.append(p)
    import gc
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cfg = {"arch": "batchtopk", "n_latents": latents, "k": 16, "lr": 2e-3, "tokens": tokens, "batch_size": 1024,
           "buffer_rows": 16384, "aux_k": 256, "aux_coeff": 1 / 32, "dead_tokens": 50000, "holdout_every": 10,
           "scale_rows": 4096, "calib_rows": 4096, "l1_coeff": 1.0, "l1_warmup": 0.05}
    store = ActivationStore([paths])
    train_dictionary(store, ["base"], cfg, seed=0, threads=2)
    # Touch every shard once more (a full pass), as evaluation does.
    for _ in store:
        pass
    print(f"RSS {before} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {store.n_rows}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--rows-per-shard", type=int, default=16384)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--latents", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=300000)
    ap.add_argument("--child", type=int)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.rows_per_shard, a.d, a.latents, a.tokens)
        return
    peaks = {}
    for mult in (1, 8):
        n = a.shards * mult
        out = subprocess.run([sys.executable, str(HERE), "--child", str(n), "--rows-per-shard", str(a.rows_per_shard),
                              "--d", str(a.d), "--latents", str(a.latents), "--tokens", str(a.tokens)],
                             capture_output=True, text=True, check=True).stdout
        _, before, peak, rows = next(l for l in out.splitlines() if l.startswith("RSS")).split()
        peaks[mult] = int(peak) / 1024
        size_mb = int(rows) * a.d * 4 / 2**20
        print(f"{mult}x shards ({n} shards, {int(rows):,} rows, {size_mb:.0f} MiB as float32): peak RSS {peaks[mult]:.0f} MiB "
              f"(before training {int(before) / 1024:.0f} MiB)")
    print(f"8x / 1x peak RSS: {peaks[8] / peaks[1]:.3f} (target within 10%)")


if __name__ == "__main__":
    main()
