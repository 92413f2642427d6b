# featdrift: feature-level model diffing of LLM post-training (see README.md, DESIGN.md).
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (local or SLURM) import the package from this checkout even without `pip install -e .`.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

from featdrift.config import ConfigError, load_schema, validate


configfile: "config.yaml"


try:
    validate(config, load_schema(Path(workflow.basedir) / "schemas/config.schema.yaml"))
except ConfigError as e:
    sys.exit(f"featdrift: config error: {e}")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/base.smk"
include: "rules/eval.smk"


rule all:
    default_target: True
    input:
        res("models/base.lineage.json"),
        res("eval/base/summary.json"),
