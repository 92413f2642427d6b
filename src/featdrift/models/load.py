"""Loading models safely: safetensors only, remote code only when the config asks.

transformers is imported where it is used: its model classes cost ~5 s of imports per process,
which jobs that never load a model (dictionary training, the probe's tokenizing) should not pay.
"""

from __future__ import annotations

import json
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# tokenizer_class of a saved plain fast tokenizer (transformers 5 writes TokenizersBackend).
GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")
# How a tokenizer was loaded, not what it is: transformers keeps them in init_kwargs and writes them into
# every tokenizer_config.json saved from it, so a checkpoint's bytes would depend on HF_HUB_OFFLINE.
LOAD_FACTS = ("local_files_only", "is_local")


class ModelLoadError(ValueError):
    pass


def check_local_model(path: str | Path) -> None:
    p = Path(path)
    if not p.is_dir():
        raise ModelLoadError(f"{path}: model directory does not exist")
    if not any(p.glob("*.safetensors")):
        pickled = sorted(q.name for q in p.iterdir() if q.suffix in PICKLE_SUFFIXES)
        why = f"only pickle weights ({', '.join(pickled)}), which are refused" if pickled else "no *.safetensors weights"
        raise ModelLoadError(f"{path}: {why}")


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """The tokenizer as saved. A plain fast tokenizer (ours: char, bpe) is loaded as one: AutoTokenizer
    would rebuild it as the model type's own class (Qwen2Tokenizer for qwen2), with other ids."""
    cfg = Path(path) / "tokenizer_config.json"
    if cfg.is_file() and (Path(path) / "tokenizer.json").is_file() \
            and json.loads(cfg.read_text()).get("tokenizer_class") in GENERIC_TOKENIZERS:
        from transformers import PreTrainedTokenizerFast

        return _without_load_facts(PreTrainedTokenizerFast.from_pretrained(path))
    from transformers import AutoTokenizer

    return _without_load_facts(AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code))


def _without_load_facts(tok):
    for key in LOAD_FACTS:
        tok.init_kwargs.pop(key, None)
    return tok


def _check_if_local(path: str | Path) -> None:
    if Path(path).exists() or str(path).startswith((".", "/")):
        check_local_model(path)


def _with_pad(tok):
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """The tokenizer exactly as load_model returns it, without loading the weights."""
    _check_if_local(path)
    try:
        return _with_pad(load_tokenizer(path, trust_remote_code))
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"{path}: no loadable tokenizer ({str(e).splitlines()[0]})") from None


def load_model(path: str | Path, trust_remote_code: bool = False, dtype="float32"):
    """(model, tokenizer) from a local directory or a hub id (hub only when online)."""
    from transformers import AutoModelForCausalLM

    _check_if_local(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=dtype)
        tok = load_tokenizer(path, trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"{path}: not a loadable causal LM ({str(e).splitlines()[0]})") from None
    model.eval()
    return model, _with_pad(tok)
