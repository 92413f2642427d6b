"""Shared test set-up: offline Hugging Face, a project-local HF_HOME, and the session's tiny build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import FULL_CONFIG, ROOT, snakemake

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(ROOT / ".hf_home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config's data, base model and base evaluation, built once for the session."""
    wd = tmp_path_factory.mktemp("tiny")
    snakemake(wd, "results/models/base.lineage.json", "results/eval/base/summary.json")
    return wd


@pytest.fixture(scope="session")
def tiny_full(tiny_run) -> Path:
    """The session's tiny build extended to the whole workflow (report included), built once."""
    snakemake(tiny_run, config=FULL_CONFIG)
    return tiny_run
