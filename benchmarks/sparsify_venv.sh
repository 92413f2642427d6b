#!/usr/bin/env bash
# The venv that benchmarks/sparsify_compare.py runs EleutherAI sparsify in (git-ignored):
#
#     bash benchmarks/sparsify_venv.sh [VENV]        # default benchmarks/.venv-sparsify
#
# eai-sparsify 1.3.3 (pure Python, MIT) declares, unpinned: accelerate datasets einops
# huggingface-hub natsort safetensors schedulefree simple-parsing torch transformers
# (from `pip download --no-deps eai-sparsify==1.3.3`, its METADATA). torch is pinned to the
# project's 2.13.0 and installed first, so that the resolver keeps it: an unpinned torch
# pulls a multi-GB CUDA build. Triton is not installed, so sparsify uses its eager
# (embedding_bag) decoder, as on any CPU. No bitsandbytes: its Trainer then uses torch.optim.Adam.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/.venv-sparsify}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "torch==2.13.0"
"$VENV/bin/pip" install --quiet "torch==2.13.0" "eai-sparsify==1.3.3" accelerate datasets einops huggingface-hub \
    natsort safetensors schedulefree simple-parsing transformers numpy
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, torch
assert torch.version.cuda is None, f"a CUDA torch was installed ({torch.__version__}); install the CPU wheel of 2.13.0"
print("sparsify venv:", {p: md.version(p) for p in ("eai-sparsify", "torch", "transformers", "datasets", "accelerate",
                                                     "schedulefree", "numpy")})
PY
