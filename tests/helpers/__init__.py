"""What tests share: the repository root, the tiny config and a runner for the workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEST_CONFIG = ROOT / "configs" / "test.yaml"


def snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True,
              override_name: str = "override.yaml") -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` on the test config (+ `config` overrides written to `override_name`)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", str(TEST_CONFIG)]
    if config:
        extra = workdir / override_name
        extra.write_text(yaml.safe_dump(config))
        cmd.append(str(extra))
    # Three job slots on two cores: jobs spend seconds importing torch on one thread, so a third slot
    # overlaps those; the tiny full build took 285 s against 319 s with --cores 2, byte-identical.
    # Under pytest-xdist (`make test`) each worker's runs get their share of the cores instead.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cores = 3 if workers == 1 else max(1, (os.cpu_count() or 2) // workers)
    cmd += ["--cores", str(cores), *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# The overrides of the session's full tiny build (`tiny_full`): every test that extends or dry-runs
# the whole workflow uses them, so that no test reruns another's jobs through a params change.
FULL_CONFIG = {"select": {"min_tasks": 1}, "intervene": {"alphas": [4.0], "n_random": 2, "bootstrap": 200}}


def merged(a: dict, b: dict) -> dict:
    """`b` over `a`, key by key (as Snakemake merges config files)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
