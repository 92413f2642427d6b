# featdrift: feature-level model diffing of LLM post-training (see README.md, docs/design.md).
import gc
import os
import sys
from pathlib import Path

# Snakemake's imports leave ~130k objects (modules, classes, plugin registries) that live as long
# as the process; every full collection, and the one at exit, walks them again: ~0.2 s of a no-op
# run. Frozen, later collections skip them; what is allocated afterwards is collected as usual.
gc.freeze()

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (local or SLURM) import the package from this checkout even without `pip install -e .`.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

from featdrift.config import ConfigError, is_local, load_schema, validate
from featdrift.activations.budget import BudgetError, check as check_storage_budget


# The embedded default, found next to this file whatever the working directory;
# `--configfile` files extend and override it.
configfile: os.path.join(workflow.basedir, "config.yaml")


try:
    validate(config, load_schema(Path(workflow.basedir) / "schemas/config.schema.yaml"))
except ConfigError as e:
    sys.exit(f"featdrift: config error: {e}")


include: "rules/common.smk"


# Stop before any job when activation capture would overrun the disk budget (storage.max_bytes).
try:
    check_storage_budget(config, len(MODELS))
except BudgetError as e:
    sys.exit(f"featdrift: {e}")


include: "rules/data.smk"
include: "rules/base.smk"
include: "rules/eval.smk"


if not CALIBRATION:

    include: "rules/train.smk"


include: "rules/activations.smk"
include: "rules/dictionaries.smk"
include: "rules/drift.smk"
include: "rules/mediation.smk"
include: "rules/report.smk"


if CALIBRATION:

    include: "rules/calibration.smk"


rule all:
    default_target: True
    input:
        (
            calibration_targets
            if CALIBRATION
            else [
                res("models/base.lineage.json"),
                expand(res("eval/{model}/summary.json"), model=MODELS),
                res("eval/accuracy.md"),
                dict_targets,
                drift_targets,
                res("interventions/effects.md"),
                res("report/summary.md"),
            ]
        ),
