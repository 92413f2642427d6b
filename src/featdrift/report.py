"""`results/report/summary.md`: the run's headline numbers in one page, with its plots copied beside it.

The page is self-contained (relative image links) so it can be read in any Markdown viewer or
attached to a lab notebook; `snakemake --report` gives the full HTML report with every artifact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .io import atomic_path, write_text


def _copy(src, dest_dir: Path) -> str:
    """Copy a plot next to the summary under a flat, unique name; returns the relative link."""
    src = Path(src)
    name = "_".join(src.parts[-3:]) if src.parent.name.startswith("layer-") else "_".join(src.parts[-2:])
    with atomic_path(dest_dir / name) as tmp:
        shutil.copyfile(src, tmp)
    return name


def _img(link: str, alt: str) -> str:
    return f"![{alt}]({link})\n"


def _demote(md: str) -> str:
    """Nest a stage's own Markdown headings under the summary's section heading."""
    return "\n".join("###" + line if line.startswith("#") else line for line in md.splitlines())


# Where recovery.md's per-feature detail starts: the summary page shows what comes before.
PER_FEATURE = "Per planted feature and checkpoint"


def summary_markdown(inp: dict, cfg: dict, dest_dir: Path) -> str:
    """`inp`: accuracy, claims (per layer), selection, effects (Markdown/JSON paths), plots (lists of
    PNGs) and, when a calibration run has written one, its recovery.md (a list of at most one)."""
    sel = json.loads(Path(inp["selection"]).read_text())
    lines = ["# featdrift run summary", "",
             f"Seed {cfg['seed']}; {cfg['n_checkpoints']} checkpoints per run (steps {cfg['steps']}); "
             f"dictionaries at layer(s) {cfg['layers']}. Every number below is read from the artifacts under "
             "`results/`, each with a `lineage.json` (inputs, params, code version).", "",
             "## Accuracy of base and every checkpoint", "", Path(inp["accuracy"]).read_text(), ""]
    lines += [_img(_copy(p, dest_dir), "accuracy") for p in inp["accuracy_plots"]] + [""]
    lines += ["## Drift: the three claims", ""]
    for path in inp["claims"]:
        lines += [f"Layer {Path(path).parent.name.removeprefix('layer-')}:", "",
                  _demote(Path(path).read_text()), ""]
    lines += [_img(_copy(p, dest_dir), "drift") for p in inp["drift_plots"]] + [""]
    for path in inp.get("calibration", []):
        head = Path(path).read_text().split(PER_FEATURE)[0]
        lines += ["## How far the drift instruments can be trusted", "",
                  "From the calibration run (`snakemake calibration --configfile configs/calibration.yaml`, "
                  f"`{path}`): the same stages on models whose feature changes were planted.", "",
                  _demote(head), ""]
    used = sel["tasks_used"]
    lines += ["## Generalization features", "",
              f"Dictionary `{sel['dictionary']}` at layer {sel['layer']}, rho = {sel['rho']}. "
              f"Compact set: **{sel['compact_size']} features** (selected in >= {sel['min_tasks']} of the "
              f"{len(used)} tasks with critical samples): {sel['compact_set']}.", "",
              "Reverse flips (base right, RL wrong) beside the critical samples: on a task near chance both are "
              "churn, and the critical samples measure RL's generalization only where they clearly outnumber them.",
              "", "| task | critical samples (base wrong, RL right) | reverse flips | selected features |",
              "|---|---|---|---|"]
    lines += [f"| {t} | {v['n_critical']} | {v.get('n_reverse', '-')} | {v.get('n_selected', '-')} |"
              for t, v in sel["tasks"].items()]
    lines += ["", _img(_copy(inp["selection_plot"], dest_dir), "selection"), "",
              "## Interventions", "", Path(inp["effects"]).read_text(), "",
              _img(_copy(inp["effects_plot"], dest_dir), "interventions"), ""]
    return "\n".join(lines)


def write_summary(inp: dict, cfg: dict, out_path) -> None:
    dest = Path(out_path).parent
    dest.mkdir(parents=True, exist_ok=True)
    write_text(out_path, summary_markdown(inp, cfg, dest))
