"""Jobs that never load a model do not pay for transformers' model imports (~5 s a process)."""

from __future__ import annotations

import subprocess
import sys


def test_dictionary_training_and_tokenizer_loading_leave_transformers_model_classes_unimported():
    code = ("import sys; import featdrift.dictionaries.build, featdrift.models.load; "
            "print(sorted(m for m in sys.modules if m == 'transformers' or m.startswith('transformers.models')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
