"""What every `script:` does around its body: log redirection and one-line errors."""

from __future__ import annotations

import gc
import logging
import resource
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

# ConfigError and ModelLoadError are ValueErrors. Nothing heavy is imported here: light jobs
# (task data, tables, reports) must not pay for torch and transformers at start-up.
USER_ERRORS = (ValueError, FileNotFoundError)
log = logging.getLogger(__name__)


@contextmanager
def job(smk):
    """Send the job's output to its log; turn user errors into one line on the console.

    The traceback stays in the log; the console gets `featdrift: <rule>: <message>`. What is alive
    before and after the body is frozen: torch and transformers leave ~700k objects that every full
    collection, and the one at interpreter exit, would walk again (the Snakefile does the same).
    The log ends with the process's CPU time (`cpu_line`): Snakemake's benchmark files sample CPU
    every 0.5 s for 15 s and every 30 s after, so their cpu_time misses most of a longer job.
    """
    gc.freeze()
    console = sys.stderr
    path = Path(smk.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as f, redirect_stdout(f), redirect_stderr(f):
        logging.basicConfig(stream=f, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        try:
            yield
            log.info(cpu_line())
            gc.freeze()
        except USER_ERRORS as e:
            logging.exception("failed")
            print(f"featdrift: {smk.rule}: {e}", file=console)
            sys.exit(1)


CPU_PREFIX = "job cpu "


def cpu_line() -> str:
    """This process's CPU seconds so far (its imports, every thread, and waited-for children) and peak RSS."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, sys_ = own.ru_utime + kids.ru_utime, own.ru_stime + kids.ru_stime
    rss_mb = max(own.ru_maxrss, kids.ru_maxrss) / 1024  # KiB on Linux
    return f"{CPU_PREFIX}{user + sys_:.2f} s (user {user:.2f}, sys {sys_:.2f}), peak rss {rss_mb:.0f} MB"


def logged_cpu(path: Path) -> float | None:
    """The CPU seconds a finished job's log records (`cpu_line`), None where it has none."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        i = line.find(CPU_PREFIX)
        if i >= 0:
            return float(line[i + len(CPU_PREFIX):].split(" ", 1)[0])
    return None
