"""What every `script:` does around its body: log redirection and one-line errors."""

from __future__ import annotations

import gc
import logging
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

# ConfigError and ModelLoadError are ValueErrors. Nothing heavy is imported here: light jobs
# (task data, tables, reports) must not pay for torch and transformers at start-up.
USER_ERRORS = (ValueError, FileNotFoundError)


@contextmanager
def job(smk):
    """Send the job's output to its log; turn user errors into one line on the console.

    The traceback stays in the log; the console gets `featdrift: <rule>: <message>`. What is alive
    before and after the body is frozen: torch and transformers leave ~700k objects that every full
    collection, and the one at interpreter exit, would walk again (the Snakefile does the same).
    """
    gc.freeze()
    console = sys.stderr
    log = Path(smk.log[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", buffering=1) as f, redirect_stdout(f), redirect_stderr(f):
        logging.basicConfig(stream=f, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        try:
            yield
            gc.freeze()
        except USER_ERRORS as e:
            logging.exception("failed")
            print(f"featdrift: {smk.rule}: {e}", file=console)
            sys.exit(1)
