"""Import costs: jobs that never load a model do not pay for transformers' model imports (~5 s a process),
and Snakemake's start (every run, dry run and no-op) does not pay for torch (~2.5 s)."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import ROOT


def test_dictionary_training_and_tokenizer_loading_leave_transformers_model_classes_unimported():
    code = ("import sys; import featdrift.dictionaries.build, featdrift.models.load; "
            "print(sorted(m for m in sys.modules if m == 'transformers' or m.startswith('transformers.models')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_workflow_s_own_imports_leave_torch_unimported():
    """What the Snakefile and the rule files import from featdrift: a package import that reaches torch
    (35e9a2b's `featdrift.dictionaries.settings` did, through the package's __init__) doubled the no-op."""
    lines = [line.strip() for f in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
             for line in f.read_text().splitlines() if re.match(r"\s*(from|import) featdrift\b", line)]
    assert len(lines) >= 4, lines
    code = "; ".join(lines + ["import sys", "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", (lines, out)
