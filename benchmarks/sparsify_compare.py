"""featdrift's TopK dictionary trainer against EleutherAI sparsify 1.3.3's SAE trainer, in one run.

    bash benchmarks/sparsify_venv.sh          # once: benchmarks/.venv-sparsify (git-ignored)
    python benchmarks/sparsify_compare.py [--latents 2048 16384 32768] [--steps 30 10 6] [--warmup 2]
        [--d 128] [--k 16] [--batch-size 4096] [--lr 2e-3] [--threads 2] [--repeats 2] [--dead-tokens N]
        [--before-src DIR] [--sparsify-python benchmarks/.venv-sparsify/bin/python]

One synthetic dataset (tests/helpers/acts.sparse_data, as dict_train_throughput.py makes it:
16 atoms per token with magnitudes in [1, 3] plus noise; one file for all sizes, 4,096 atoms,
rescaled so that E||x|| = sqrt(d), which makes featdrift's own scale 1) is written once as
float16 `.npy`; featdrift trains on it as Parquet shards written from that file (its trainer
streams shards), sparsify on the same file. Each trainer and size runs in a fresh subprocess
(its own peak RSS), the trainers interleaved and their order rotated over repeats; the figures
are medians over repeats. Threads: torch.set_num_threads(--threads) in every child.

Timed: `--steps` whole training steps after `--warmup` untimed ones, between two timestamps
taken at the same point of consecutive loop iterations, so a timed step includes everything
each trainer's loop does (data, forward, backward, optimizer, bookkeeping) and nothing before
the loop or after it.
 - featdrift (project venv): `dictionaries.train.train_dictionary`, arch topk, Adam (fused),
   the timestamp after each `Training.after_step`. `sparse` is the TopK step as trained;
   `dense` the dense reference step (`DenseTopKTraining`: (B, n) code, dense decoder and encoder
   backward); `before` (with --before-src, a featdrift source tree, e.g. from
   `git archive HEAD src | tar -x -C DIR`, then DIR/src) is that tree's TopK trainer.
 - sparsify (its venv, --sparsify-python): its public `sparsify.Trainer(TrainConfig, dataset,
   model).fit()`. The Trainer only trains on a HuggingFace model's hooked module outputs, so the
   "model" here is a stub PreTrainedModel whose one layer (`layers.0`, the hookpoint) outputs
   rows of the data file: input_ids are row numbers (a HF `datasets.Dataset` of sequences of
   `--seq-len` consecutive rows, so a batch of batch_size/seq_len sequences is batch_size tokens).
   Everything else is sparsify's own loop: its forward hook, SparseCoder forward (fused encoder
   with its sparse index_add backward, TopK, embedding_bag decoder), FVU loss + auxk_alpha * AuxK
   (its dead mask from num_tokens_since_fired > dead_feature_threshold), backward, removal of the
   decoder-parallel gradient, torch.optim.Adam (no bitsandbytes installed), linear warmup/decay
   schedule, did_fire bookkeeping, decoder renormalisation. The timestamp is taken when the stub
   model is called (each batch). Settings: num_latents, k, batch, lr as featdrift's; optimizer
   adam; auxk_alpha = featdrift's aux_coeff (1/32); dead_feature_threshold = --dead-tokens;
   lr_warmup_steps 2% of steps (featdrift's warmup); no wandb, no checkpoint inside the window.

--dead-tokens (both trainers' dead-latent threshold, in tokens): the default 10**12 keeps AuxK
off in both (as dict_train_throughput.py); a small value (e.g. 16384) makes both run AuxK.
Memory: peak RSS of each child (VmHWM) and its RSS when training starts (data and model
loaded, imports done); sparsify reports no memory figure of its own on CPU (it logs none).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
SPARSIFY_PY = HERE.parent / ".venv-sparsify" / "bin" / "python"
AUX_COEFF, AUX_K = 1 / 32, 256


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    return _status_mib("VmRSS")


def peak_mib() -> float:
    """Peak RSS of this process since its exec (VmHWM; ru_maxrss would include the parent's peak from before the fork)."""
    return _status_mib("VmHWM")


def timed_rate(stamps: list[float], first: int, steps: int, batch: int) -> float:
    """Tokens/s over `steps` iterations, from the stamp at index `first` to `first + steps`."""
    return steps * batch / (stamps[first + steps] - stamps[first])


def check_fvu(data: str, reconstruct, rows: int = 8192, chunk: int = 1024) -> float:
    """FVU of the trained SAE on the file's first rows (a sanity check that both trained, not a
    quality comparison: a few hundred thousand tokens)."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.load(data)[:rows].astype(np.float32))
    with torch.no_grad():
        xhat = torch.cat([reconstruct(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    return float((x - xhat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


# ---------------------------------------------------------------- children
def featdrift_child(a) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from featdrift.activations.store import ActivationStore
    from featdrift.dictionaries.arch import get
    from featdrift.dictionaries.train import train_dictionary

    torch.set_num_threads(a.threads)
    arch = get("topk")
    if a.variant == "dense":
        from featdrift.dictionaries.arch.topk import DenseTopKTraining

        arch.training = DenseTopKTraining
    stamps: list[float] = []

    class Timed(arch.training):
        def after_step(self):
            super().after_step()
            stamps.append(time.perf_counter())

    arch.training = Timed
    shards = json.loads(Path(a.shards).read_text())
    total = a.warmup + a.steps
    cfg = {"arch": "topk", "n_latents": a.latents, "k": a.k, "l1_coeff": 1.0, "l1_warmup": 0.05, "lr": a.lr,
           "tokens": total * a.batch_size, "batch_size": a.batch_size, "buffer_rows": 16384, "aux_k": AUX_K,
           "aux_coeff": AUX_COEFF, "dead_tokens": a.dead_tokens, "holdout_every": 10, "scale_rows": 4096,
           "calib_rows": 4096}
    start_rss = rss_mib()
    D, curve = train_dictionary(ActivationStore(shards), ["m0"], cfg, seed=0, threads=a.threads)
    peak = peak_mib()  # before the check below, which encodes densely
    fvu = check_fvu(a.data, lambda x: D.reconstruct(x[:, None])[:, 0])
    # stamps[i] ends step i: steps warmup .. warmup + steps - 1 lie between stamps[warmup - 1] and the last
    return {"tps": timed_rate(stamps, a.warmup - 1, a.steps, a.batch_size), "peak_mib": peak,
            "start_mib": start_rss, "fvu": fvu, "aux_steps": sum(r["aux"] > 0 for r in curve),
            "scale": float(D.scales[0]), "torch": torch.__version__, "threads": torch.get_num_threads()}


def sparsify_child(a) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    import sparsify
    from datasets import Dataset
    from sparsify import SaeConfig, Trainer, TrainConfig
    from transformers import PretrainedConfig, PreTrainedModel

    rows = torch.from_numpy(np.load(a.data).astype(np.float32))  # (N, d), the file's values
    stamps: list[float] = []

    class RowsConfig(PretrainedConfig):
        model_type = "featdrift_rows"

        def __init__(self, d_model: int = 128, **kw):
            super().__init__(**kw)
            self.hidden_size, self.num_hidden_layers = d_model, 1

    class Rows(torch.nn.Module):
        def forward(self, h):
            return h

    class RowsModel(PreTrainedModel):
        """A 'model' whose only layer outputs the data rows named by input_ids (row numbers)."""

        config_class = RowsConfig
        base_model_prefix = ""

        def __init__(self, config):
            super().__init__(config)
            self.layers = torch.nn.ModuleList([Rows()])
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device and dtype

        @property
        def dummy_inputs(self):
            return {"input_ids": torch.zeros(1, 2, dtype=torch.long)}

        def forward(self, input_ids, **kw):
            stamps.append(time.perf_counter())
            return self.layers[0](rows[input_ids])

    T = a.seq_len
    assert a.batch_size % T == 0, "--batch-size must be a multiple of --seq-len"
    n_batches = a.warmup + a.steps + 1  # the stamp of batch warmup + steps closes the last timed step
    ids = (torch.arange(n_batches * a.batch_size) % len(rows)).view(-1, T)
    ds = Dataset.from_dict({"input_ids": ids.tolist()}).with_format("torch")
    model = RowsModel(RowsConfig(d_model=rows.shape[1]))
    save = tempfile.mkdtemp()
    cfg = TrainConfig(SaeConfig(num_latents=a.latents, k=a.k), batch_size=a.batch_size // T, loss_fn="fvu",
                      optimizer="adam", lr=a.lr, lr_warmup_steps=max(1, int(0.02 * (a.warmup + a.steps))),
                      auxk_alpha=AUX_COEFF, dead_feature_threshold=a.dead_tokens, hookpoints=["layers.0"],
                      init_seeds=[0], save_every=10**9, log_to_wandb=False, save_dir=save)
    trainer = Trainer(cfg, ds, model)
    stamps.clear()  # Trainer() ran the model once to find the hookpoint's width
    start_rss = rss_mib()
    trainer.fit()
    peak = peak_mib()
    shutil.rmtree(save, ignore_errors=True)  # the checkpoint fit() writes after its last step
    sae = trainer.saes["layers.0"]
    dead = int((trainer.num_tokens_since_fired["layers.0"] > a.dead_tokens).sum())
    fvu = check_fvu(a.data, lambda x: sae(x).sae_out)
    return {"tps": timed_rate(stamps, a.warmup, a.steps, a.batch_size), "peak_mib": peak, "start_mib": start_rss,
            "fvu": fvu, "dead_at_end": dead, "sparsify": sparsify.__version__, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- parent
def write_data(tmp: Path, a) -> tuple[Path, Path]:
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(HERE.parent))
    from dict_train_throughput import write_shards
    from helpers.acts import sparse_data

    xs, _ = sparse_data(a.rows, a.d, a.atoms, a.k)
    xs *= np.sqrt(a.d) / np.linalg.norm(xs, axis=-1).mean()
    xs = xs.astype(np.float16)
    data = tmp / "data.npy"
    np.save(data, xs[:, 0])
    shards = tmp / "shards.json"
    shards.write_text(json.dumps(write_shards(tmp / "shards", xs, "float16", n_shards=4, rows_per_group=2048)))
    return data, shards


def run_child(kind: str, variant: str, latents: int, steps: int, a, data: Path, shards: Path) -> dict:
    py = a.sparsify_python if kind == "sparsify" else sys.executable
    env = dict(os.environ)
    if variant == "before":
        env["PYTHONPATH"] = os.pathsep.join([a.before_src, env.get("PYTHONPATH", "")])
    cmd = [str(py), str(HERE), "--child", kind, "--variant", variant, "--latents", str(latents), "--steps", str(steps),
           "--warmup", str(a.warmup), "--d", str(a.d), "--k", str(a.k), "--batch-size", str(a.batch_size),
           "--lr", str(a.lr), "--threads", str(a.threads), "--dead-tokens", str(a.dead_tokens),
           "--seq-len", str(a.seq_len), "--data", str(data), "--shards", str(shards)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    out = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if p.returncode or not out:
        sys.exit(f"{kind}/{variant} n={latents} failed (rc {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
    return json.loads(out[-1][len("RESULT "):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latents", type=int, nargs="+", default=[2048, 16384, 32768])
    ap.add_argument("--steps", type=int, nargs="+", default=[30, 10, 6], help="timed steps, one per size (or one for all)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dead-tokens", type=int, default=10**12)
    ap.add_argument("--rows", type=int, default=32768, help="rows of the synthetic dataset (both trainers cycle over it)")
    ap.add_argument("--atoms", type=int, default=4096, help="atoms of the synthetic dictionary")
    ap.add_argument("--seq-len", type=int, default=256, help="sparsify: rows per dataset sequence")
    ap.add_argument("--no-dense", action="store_true", help="skip featdrift's dense reference step")
    ap.add_argument("--before-src", default=None, help="a featdrift source root (the folder holding featdrift/) to time too")
    ap.add_argument("--sparsify-python", default=str(SPARSIFY_PY))
    ap.add_argument("--child", choices=["featdrift", "sparsify"], help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="sparse", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--shards", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.steps, a.latents = a.steps[0], a.latents[0]
        res = (featdrift_child if a.child == "featdrift" else sparsify_child)(a)
        print("RESULT " + json.dumps(res), flush=True)
        return
    if not Path(a.sparsify_python).exists():
        sys.exit(f"no sparsify venv at {a.sparsify_python}: run bash benchmarks/sparsify_venv.sh")
    steps = dict(zip(a.latents, a.steps if len(a.steps) == len(a.latents) else a.steps[:1] * len(a.latents)))
    trainers = [("featdrift", "sparse")] + ([] if a.no_dense else [("featdrift", "dense")])
    trainers += [("featdrift", "before")] if a.before_src else []
    trainers += [("sparsify", "sparsify")]
    tmp = Path(tempfile.mkdtemp(prefix="sparsify-compare-"))
    try:
        compare(a, tmp, steps, trainers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare(a, tmp: Path, steps: dict, trainers: list) -> None:
    data, shards = write_data(tmp, a)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    print(f"featdrift {commit.stdout.strip()}{' (uncommitted changes in the tree)' if dirty.stdout.strip() else ''}; "
          f"d {a.d} k {a.k} batch {a.batch_size} lr {a.lr} threads {a.threads} warmup {a.warmup} "
          f"dead_tokens {a.dead_tokens} (AuxK coeff {AUX_COEFF:.4g} in both) repeats {a.repeats}; "
          f"data {a.rows} rows float16 {data}", flush=True)
    results: dict = {}
    for rep in range(a.repeats):
        for n in a.latents:
            order = trainers[rep % len(trainers):] + trainers[: rep % len(trainers)]  # rotate who goes first
            for kind, variant in order:
                r = run_child(kind, variant, n, steps[n], a, data, shards)
                results.setdefault((n, variant), []).append(r)
                print(f"  rep {rep} n {n:>6} {variant:<9} {r['tps']:>10,.0f} tokens/s  threads {r['threads']}  peak RSS {r['peak_mib']:>7,.0f} MiB "
                      f"(at start {r['start_mib']:,.0f})  fvu {r['fvu']:.3f}  " +
                      (f"dead latents at the end {r['dead_at_end']}" if kind == "sparsify" else
                       f"curve rows with AuxK > 0: {r['aux_steps']}"), flush=True)
    print(f"\nmedians over {a.repeats} repeats; tokens/s over the timed steps; peak RSS of each trainer's own process "
          f"(to the end of training); fvu on 8,192 rows after the run (a sanity check, not a quality comparison)")
    print(f"{'latents':>7} {'steps':>5} {'trainer':<16} {'tokens/s':>10} {'peak RSS MiB':>13} {'start MiB':>10} "
          f"{'fvu':>6} {'featdrift/sparsify':>19}")
    for n in a.latents:
        sp = statistics.median(r["tps"] for r in results[(n, "sparsify")])
        for kind, variant in trainers:
            rs = results[(n, variant)]
            tps = statistics.median(r["tps"] for r in rs)
            name = "sparsify 1.3.3" if kind == "sparsify" else f"featdrift {variant}"
            ratio = "" if kind == "sparsify" else f"{tps / sp:.2f}x"
            print(f"{n:>7} {steps[n]:>5} {name:<16} {tps:>10,.0f} {statistics.median(r['peak_mib'] for r in rs):>13,.0f} "
                  f"{statistics.median(r['start_mib'] for r in rs):>10,.0f} {statistics.median(r['fvu'] for r in rs):>6.3f} "
                  f"{ratio:>19}")
    print("target: featdrift sparse >= 1.5x sparsify's tokens/s")


if __name__ == "__main__":
    main()
