"""Whole-workflow timings: the no-op run when everything is up to date, and the paper-scale dry run.

Usage: python benchmarks/bench_workflow.py [--workdir DIR] [--configfile FILE] [--repeat N] [--build] [TARGET ...]

- whole run (--build): the targets are built first in DIR (on --configfile, e.g. configs/test.yaml
  for a quick figure); from an empty DIR this is the embedded default from nothing to the report
  (target <= 600 s), printed with the summed job time per stage from logs/benchmarks/.
- no-op: `snakemake --cores all` in DIR (default: the repository, i.e. the embedded default's
  results/) when every output is up to date (target <= 2 s).
  TARGETs restrict both to those files (default: rule all).
- paper-scale dry run: `snakemake --configfile configs/qwen3-4b.yaml -n` (target <= 10 s), run in
  a scratch folder so it sees no results at all (every job is planned).
Prints one line per figure: best and median of --repeat runs, and the job counts.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from featdrift.jobs import logged_cpu

ROOT = Path(__file__).resolve().parents[1]


def snakemake(cwd: Path, *args: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"bench_workflow: {' '.join(cmd)} failed:\n{out[-3000:]}")
    return dt, out


def report(name: str, times: list[float], note: str) -> None:
    print(f"{name}: best {min(times):.2f} s, median {statistics.median(times):.2f} s over {len(times)} runs; {note}")


def stage_times(bench_dir: Path, wall: float | None = None, run_cpu: float | None = None) -> None:
    """Per stage (first folder under logs/benchmarks/): jobs, summed wall and CPU seconds; with the run's wall
    time, how busy the cores were (summed CPU / (cores x wall)).

    Wall comes from the rules' benchmark files. CPU comes from each job's log (`featdrift.jobs.cpu_line`:
    the process's own count, imports included); where a log has none (a job from before that line existed,
    or the report), from the benchmark file, marked `*`: Snakemake samples it every 0.5 s for 15 s, then
    every 30 s, so it misses most of a job longer than 15 s. `run_cpu`: what the whole run used (Snakemake
    itself and every job), for comparison."""
    sums: dict[str, list[tuple[float, float, bool]]] = {}
    for f in sorted(bench_dir.rglob("*.tsv")):
        rows = f.read_text().splitlines()
        if len(rows) >= 2:
            rel = f.relative_to(bench_dir)
            stage = rel.parts[0].removesuffix(".tsv")
            head, last = rows[0].split("\t"), rows[-1].split("\t")
            cpu = logged_cpu(bench_dir.parent / rel.with_suffix(".log"))
            sampled = cpu is None
            if sampled:
                cpu = float(last[head.index("cpu_time")]) if "cpu_time" in head else float("nan")
            sums.setdefault(stage, []).append((float(last[0]), cpu, sampled))

    def line(name: str, t: list[tuple[float, float, bool]], longest: bool = True) -> str:
        mark = "*" if any(s for _, _, s in t) else " "
        text = (f"  {name:<14} {len(t):3d} jobs, {sum(w for w, _, _ in t):7.1f} s summed wall, "
                f"{sum(c for _, c, _ in t):7.1f} s CPU{mark}")
        return text + (f", longest {max(w for w, _, _ in t):6.1f} s" if longest else "")

    for stage, t in sorted(sums.items(), key=lambda kv: -sum(w for w, _, _ in kv[1])):
        print(line(stage, t))
    every = [x for t in sums.values() for x in t]
    print(line("all", every, longest=False))
    if any(s for _, _, s in every):
        print("  * some jobs' CPU is Snakemake's sampled benchmark figure (misses most of a job longer than 15 s)")
    if wall:
        cores = os.cpu_count() or 1
        total = run_cpu if run_cpu is not None else sum(c for _, c, _ in every)
        what = "the run's CPU (Snakemake and jobs)" if run_cpu is not None else "summed job CPU"
        print(f"  cores busy: {total / (cores * wall):.0%} of {cores} x {wall:.0f} s ({what} / (cores x wall))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=ROOT)
    ap.add_argument("--configfile", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", action="store_true", help="build the targets first (untimed)")
    ap.add_argument("--paper-config", type=Path, default=ROOT / "configs" / "qwen3-4b.yaml")
    ap.add_argument("targets", nargs="*", help="files to build / check (default: rule all)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    cfg = ["--configfile", str(args.configfile.resolve())] if args.configfile else []
    wd = args.workdir.resolve()
    if args.build:
        wd.mkdir(parents=True, exist_ok=True)
        fresh = not (wd / "results").exists()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        dt, out = snakemake(wd, *cfg, "--cores", "all", *args.targets)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        m = re.search(r"(\d+) of \1 steps", out)
        jobs = f", {m.group(1)} jobs" if m else ""
        label = "whole run from empty results/ (target <= 600 s)" if fresh else "build (results/ was not empty)"
        print(f"{label}: {dt:.1f} s{jobs}, {run_cpu:.0f} s CPU (Snakemake and every job)")
        stage_times(wd / "logs" / "benchmarks", dt if fresh else None, run_cpu)
    times = []
    for _ in range(args.repeat):
        dt, out = snakemake(wd, *cfg, "--cores", "all", *args.targets)
        if "Nothing to be done" not in out:
            sys.exit(f"bench_workflow: {wd} is not up to date (run with --build first):\n{out[-2000:]}")
        times.append(dt)
    what = " ".join(args.targets) or "rule all"
    report("no-op snakemake --cores all", times, f"{what} in {wd}")

    with tempfile.TemporaryDirectory() as scratch:
        times, n_jobs = [], None
        for _ in range(args.repeat):
            dt, out = snakemake(Path(scratch), "--configfile", str(args.paper_config.resolve()), "-n")
            times.append(dt)
            m = re.search(r"^total\s+(\d+)", out, re.M)
            n_jobs = int(m.group(1)) if m else None
        report(f"paper-scale dry run ({args.paper_config.name})", times, f"{n_jobs} jobs planned")


if __name__ == "__main__":
    main()
