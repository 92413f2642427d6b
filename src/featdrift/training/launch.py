"""Multi-GPU training inside one job: the job re-runs `train_run` under `accelerate launch`.

A Snakemake `script:` is one process; with train.num_processes > 1 it writes the
call's arguments to `<resume>/launch.json` and starts
`accelerate launch --num_processes N -m featdrift.training.launch <json>`; every
process trains its data-parallel share, process 0 writes the outputs and the
summary that the job then returns. The settings travel in the JSON as plain dicts
(TrainSettings.as_dict), and each process's `train_run` checks them again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..io import write_json


def launch(num_processes: int, spec: dict) -> dict:
    root = Path(spec["resume_dir"])
    root.mkdir(parents=True, exist_ok=True)
    spec_file, summary_file = root / "launch.json", root / "launch-summary.json"
    summary_file.unlink(missing_ok=True)
    write_json(spec_file, spec)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes),
           "-m", "featdrift.training.launch", str(spec_file)]
    subprocess.run(cmd, check=True)
    return json.loads(summary_file.read_text())


def main(spec_file: str) -> None:
    from .run import train_run

    spec = json.loads(Path(spec_file).read_text())
    summary = train_run(**spec)
    if summary:  # process 0
        write_json(Path(spec["resume_dir"]) / "launch-summary.json", summary)


if __name__ == "__main__":
    main(sys.argv[1])
