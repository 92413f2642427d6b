"""The `featdrift` command: subcommands beside the workflow (which `snakemake` runs)."""

from __future__ import annotations

import sys

COMMANDS = {"plan": "jobs, GPU-hours, disk and GPU memory of a config, per stage (featdrift.plan)"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.exit("usage: featdrift COMMAND [ARGS]\n" + "\n".join(f"  {c:<6} {h}" for c, h in COMMANDS.items()))
    from .plan import main as plan

    plan(argv[1:])
