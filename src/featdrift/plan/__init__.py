"""`featdrift plan`: jobs, GPU-hours, disk and peak GPU memory of every stage of a config, before it runs.

Every figure is a FLOP or byte count of the configured work over a GPU constant, so that a paper-scale
config can be sized (and a stage that cannot fit one GPU caught) without downloading its model
(docs/design.md "Planning"). What goes in:
- the model's shape: base.pretrain.model, a config.json on disk (local folder or Hugging Face cache),
  or KNOWN, the published config.json fields of the paper's hub models;
- measured here, on CPU with transformers' tiny models of each family (benchmarks/plan_constants.py):
  the parameter count (Card.params, exact) and ACT, the bytes a training forward saves per token;
- assumed: the config's `plan` section (GPU peak throughput, bandwidth, MFU, prompt length) and
  LM_EVAL, the sizes of lm-eval's tasks.
Sequences count at their longest (train.sft.max_length, train.rl.max_completion_length, a task's
max_gen_toks): the work and memory are upper bounds. GPU-hours of a multi-GPU job are summed over
its GPUs; memory is one GPU's peak. The activation-store bytes are also the disk budget guard's
(activations.budget), which runs when the DAG is built: nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..config import ConfigError
from .card import KNOWN, Card, card_from_hf, hf_config, model_card, width  # noqa: F401  (the package's names)
from .stages import DTYPE_BYTES, LM_EVAL, Planner, checkpoint_steps, dict_params, store_bytes  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


def plan(config: dict) -> dict:
    """The plan of a validated config as plain data (what --json prints)."""
    p = Planner(config)
    stages = p.stages()
    totals = {"jobs": sum(s.jobs for s in stages), "gpu_hours": sum(s.gpu_hours for s in stages),
              "disk_bytes": sum(s.disk_bytes for s in stages), "peak_gpu_bytes": max(s.peak_gpu_bytes for s in stages)}
    card = dataclasses.asdict(p.card) | {"params": p.card.params}
    return {"model": config["base"]["pretrained"] or "base.pretrain", "card": card, "gpu": config["plan"],
            "stages": [dataclasses.asdict(s) for s in stages], "totals": totals, "assumed_tasks": sorted(p.assumed),
            "warnings": sorted(p.warnings)}


def _size(n: float) -> str:
    if not n:
        return "-"
    for unit, k in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n:.0f} B"


def table(p: dict) -> str:
    c, g = p["card"], p["gpu"]
    limit = g["gpu_memory_gb"] * 1e9
    lines = [f"model: {p['model']} ({c['family']}, {c['params'] / 1e9:.3g}B parameters, d_model {c['d_model']}, "
             f"{c['n_layers']} layers; shape from {c['source']})",
             f"GPU: {g['gpu_tflops']:g} TFLOP/s bf16, {g['tf32_tflops']:g} tf32, {g['fp32_tflops']:g} fp32, {g['hbm_tbps']:g} TB/s, "
             f"{g['gpu_memory_gb']:g} GB, MFU {g['mfu']:g}", "",
             f"{'stage':<15}{'jobs':>6}{'GPU-h':>10}{'disk':>11}{'peak GPU mem':>19}  note"]
    for s in p["stages"] + [dict(name="total", **p["totals"], note="(peak: the largest)")]:
        over = " > GPU" if s["peak_gpu_bytes"] > limit else ""
        lines.append(f"{s['name']:<15}{s['jobs']:>6}{s['gpu_hours']:>10.1f}{_size(s['disk_bytes']):>11}"
                     f"{_size(s['peak_gpu_bytes']) + over:>19}  {s['note']}")
    lines += ["", "Upper bounds: sequences at their longest. Measured here: parameter counts, activation bytes per token "
              "(benchmarks/plan_constants.py); assumed: the plan section and lm-eval task sizes (featdrift.plan.LM_EVAL)."]
    if p["assumed_tasks"]:
        lines.append(f"Not in LM_EVAL, sized as 1000 four-choice items: {', '.join(p['assumed_tasks'])}")
    lines += [f"warning: {w}" for w in p["warnings"]]
    return "\n".join(lines)


def load_config(files: list[str | Path]) -> dict:
    """The embedded config.yaml with `files` over it, key by key as Snakemake merges them, validated."""
    import yaml

    from ..config import load_schema, validate

    def merged(a, b):
        return {**a, **{k: merged(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v for k, v in b.items()}}

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for f in files:
        config = merged(config, yaml.safe_load(Path(f).read_text()) or {})
    return validate(config, load_schema(ROOT / "schemas" / "config.schema.yaml"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="featdrift plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", default=[], help="config files over config.yaml, as for snakemake")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = ap.parse_args(argv)
    try:
        p = plan(load_config(args.configfile))
    except (ConfigError, OSError) as e:
        sys.exit(f"featdrift plan: {e}")
    print(json.dumps(p, indent=2) if args.json else table(p))
