"""Shared test set-up: offline Hugging Face, a project-local HF_HOME, and the session's tiny build."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path

import pytest

from helpers import FULL_CONFIG, ROOT, snakemake

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(ROOT / ".hf_home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# `make test` runs on two pytest-xdist workers. Session fixtures are per worker, so the tests that build on
# the session's tiny run are scheduled as two units: the files that read its full build (or only its base)
# on one worker, and the files that extend only its base on the other; every other test file is a unit of
# its own, run wherever a worker is free. The tiny base and its SAE are built once for both workers (`tiny_run`):
# the side unit starts with the kill/rerun file, whose first ~100 s build from scratch, while the other
# worker builds them. (xdist's own loadgroup does not group under pytest 9: it renames `item._nodeid`,
# which pytest 9 no longer reads.)
SIDE_BUILDS = ("test_kill_and_rerun.py", "test_calibration.py", "test_slurm.py", "test_train_resume.py")  # in order
TESTS = Path(__file__).parent
SHARED_BUILD = {p.name for p in TESTS.rglob("test_*.py")
                if p.name not in SIDE_BUILDS and re.search(r"\btiny_(run|full)\b", p.read_text())}


def _unit(name: str) -> str | None:
    return "tiny-side" if name in SIDE_BUILDS else "tiny-full" if name in SHARED_BUILD else None


def pytest_collection_modifyitems(config, items):
    """The two long units first (the scheduler keeps collection order: `--no-loadscope-reorder`), so that
    each worker starts on one and the short test files fill the gaps."""
    def key(item):
        name = item.path.name
        if name in SIDE_BUILDS:
            return (1, SIDE_BUILDS.index(name))
        return (0, 0) if name in SHARED_BUILD else (2, 0)

    items.sort(key=key)  # stable: files keep their own order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class TinyBuilds(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return _unit(file.rsplit("/", 1)[-1]) or file

    return TinyBuilds(config, log)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config's data, base model, base evaluation and base SAE (probe, activations, SAE, its
    metrics), built once for the session.

    Under xdist, built once for all workers (the first to ask builds it under a lock) and copied into each
    worker's own folder with its Snakemake metadata and file times, so that Snakemake sees it up to date
    there: ~110 s of one-core work less than a build per worker. The SAE is in it because both workers
    need one (the full build, and the kill test's uninterrupted reference on the other worker)."""
    wd = tmp_path_factory.mktemp("tiny")
    targets = ("results/models/base.lineage.json", "results/eval/base/summary.json",
               "results/dicts/sae-base/layer-1/metrics.json")
    if "PYTEST_XDIST_WORKER" not in os.environ:
        snakemake(wd, *targets)
        return wd
    shared = tmp_path_factory.getbasetemp().parent / "tiny-shared"  # the run's folder, above the workers'
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the build fails
        if not (shared / ".built").exists():
            shared.mkdir(exist_ok=True)
            snakemake(shared, *targets)
            (shared / ".built").touch()
    shutil.copytree(shared, wd, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".built"))
    return wd


@pytest.fixture(scope="session")
def tiny_full(tiny_run) -> Path:
    """The session's tiny build extended to the whole workflow (report included), built once."""
    snakemake(tiny_run, config=FULL_CONFIG)
    return tiny_run
