"""One lineage record per job: what was run, on what, with which code, and what came out.

Records hold no timestamps or host names, so that the same config on the same
machine gives byte-identical records.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from .io import write_json

PACKAGES = ["featdrift", "torch", "transformers", "tokenizers", "trl", "accelerate", "safetensors",
            "datasets", "pyarrow", "lm_eval", "snakemake", "numpy", "pandas"]
LINEAGE_NAME = "lineage"
SNAKEMAKE_MARKER = ".snakemake_timestamp"


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_hash(path: str | Path) -> str:
    """sha256 of a file, or of a directory's sorted (relative path, file hash) list.

    Snakemake's own `.snakemake_timestamp` marker in directory outputs is left out.
    """
    path = Path(path)
    if path.is_file():
        return file_hash(path)
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file() and q.name != SNAKEMAKE_MARKER):
            h.update(f"{p.relative_to(path).as_posix()}\0{file_hash(p)}\n".encode())
        return h.hexdigest()
    return "missing"


def code_version() -> dict:
    root = Path(__file__).resolve().parents[2]
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or "unknown", "git_dirty": bool(status) if status is not None else None}


def package_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _plain(x):
    """Snakemake's Namedlist/dict wrappers to plain JSON-able values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def record(smk, seed: int | None = None, extra: dict | None = None) -> dict:
    """Write the lineage record of a Snakemake job to its `lineage` output.

    Call last, after every other output is complete: the record's presence marks the job done.
    """
    target = Path(smk.output[LINEAGE_NAME])
    inputs = {str(p): content_hash(p) for p in smk.input}
    outputs = {str(p): content_hash(p) for p in smk.output if Path(p) != target}
    rec = {
        "rule": smk.rule,
        "wildcards": _plain(dict(smk.wildcards.items())),
        "params": _plain(dict(smk.params.items())),
        "seed": seed,
        "inputs": inputs,
        "outputs": outputs,
        "code": code_version(),
        "packages": package_versions(),
    }
    if extra:
        rec["extra"] = _plain(extra)
    write_json(target, rec)
    return rec
