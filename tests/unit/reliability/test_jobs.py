"""The wrapper around every job's body: its log ends with the process's own CPU time."""

from __future__ import annotations

import gc
import logging
import time
from types import SimpleNamespace

from featdrift.jobs import job, logged_cpu


def test_the_log_records_the_cpu_time_that_benchmark_sampling_misses(tmp_path):
    log = tmp_path / "logs" / "x.log"
    handlers = logging.root.handlers[:]  # job() points the root logger at its log, as a job process wants
    start = time.process_time()
    try:
        with job(SimpleNamespace(log=[str(log)], rule="x")):
            print("working")
            t = time.process_time()
            while time.process_time() - t < 0.5:  # half a second of CPU
                pass
    finally:
        logging.root.handlers[:] = handlers
        gc.unfreeze()  # job() freezes what is alive, as a job process wants; this process goes on
    burned = time.process_time() - start
    text = log.read_text()
    assert "working" in text and "peak rss" in text.splitlines()[-1]
    cpu = logged_cpu(log)
    # the whole process's count: at least what the body burned, and this test process's imports besides
    assert cpu is not None and cpu >= burned
    assert logged_cpu(tmp_path / "missing.log") is None
