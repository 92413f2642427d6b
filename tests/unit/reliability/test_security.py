"""Issue 8, security: weights only from safetensors, pickles never unpickled, remote code off unless
the config sets it, and no config string near a shell.

Also covered: a pickle-only folder is refused by load_model (test_models.py); the schema's
default for base.trust_remote_code is false (test_config.py).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

import pytest

from helpers import ROOT
from featdrift.models.load import ModelLoadError, load_model

from helpers.acts import make_model

SOURCES = sorted([*(ROOT / "src/featdrift").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])
RULE_FILES = sorted([ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")])


class Bomb:
    """A pickle that creates `path` when unpickled: proof that nothing unpickled it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def _pickle_bomb(path: Path, marker: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps(Bomb(marker)))


def test_a_pickle_beside_safetensors_is_never_unpickled(tmp_path):
    model_dir = make_model(tmp_path / "m", 0)
    marker = tmp_path / "unpickled"
    _pickle_bomb(model_dir / "pytorch_model.bin", marker)
    model, _ = load_model(model_dir)
    assert model.config.hidden_size == 32
    assert not marker.exists()


def test_load_model_asks_for_safetensors_and_no_remote_code(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM  # the class load_model imports when it runs

    seen = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    load_model(make_model(tmp_path / "m", 0))
    assert seen[0]["use_safetensors"] is True and seen[0]["trust_remote_code"] is False


def test_remote_code_is_not_run_without_the_config_flag(tmp_path):
    """A folder whose config.json points at its own Python (auto_map) loads only with trust_remote_code."""
    model_dir = make_model(tmp_path / "custom", 0)
    marker = tmp_path / "imported"
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (model_dir / "config.json").write_text(json.dumps(cfg))
    (model_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                       "from transformers import LlamaConfig, LlamaForCausalLM\n"
                                       "class EvilConfig(LlamaConfig): pass\n"
                                       "class EvilModel(LlamaForCausalLM): config_class = EvilConfig\n")
    try:
        model, _ = load_model(model_dir)
    except ModelLoadError as e:  # transformers may refuse outright...
        assert str(e).startswith(f"{model_dir}: not a loadable causal LM")
    else:  # ...or fall back to the built-in class named by model_type; never the folder's code
        assert type(model).__module__.startswith("transformers.")
    assert not marker.exists()


def test_pickle_only_base_model_is_refused_by_the_base_stage(tmp_path):
    """base.pretrained naming a folder with pytorch_model.bin: the base job refuses it, unpickles nothing, writes nothing.

    (The job prints the message as `featdrift: base: <message>`: jobs.job, shown end to end in test_reliability_rerun.py.)"""
    from featdrift.models.base import build_base

    model_dir = make_model(tmp_path / "pickled", 0)
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    _pickle_bomb(model_dir / "pytorch_model.bin", marker)
    out = tmp_path / "results/models/base"
    with pytest.raises(ModelLoadError) as e:
        build_base({"pretrained": str(model_dir), "trust_remote_code": False}, None, 0, 1, out)
    assert str(e.value) == f"{model_dir}: only pickle weights (pytorch_model.bin), which are refused"
    assert not marker.exists()
    assert not out.exists() and list(out.parent.iterdir()) == []  # atomic_dir left no temporary folder


# ---- static checks over the workflow and the package --------------------------------------------

def _calls(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func) -> str:
    return ast.unparse(func)


def test_no_rule_runs_a_shell_and_no_code_uses_one():
    """Config strings reach jobs only as Python values (`script:` + snakemake.params), never a command line."""
    directive = re.compile(r"^\s*(shell|run)\s*:", re.M)
    assert [str(p) for p in RULE_FILES if directive.search(p.read_text())] == []
    bad = []
    for path in SOURCES:
        for call in _calls(path):
            name = _name(call.func)
            if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                bad.append(f"{path}:{call.lineno} {name}")
            if name.startswith("subprocess.") and any(k.arg == "shell" for k in call.keywords):
                bad.append(f"{path}:{call.lineno} {name}(shell=...)")
            if name.startswith("subprocess.") and call.args and not isinstance(call.args[0], (ast.List, ast.Name)):
                bad.append(f"{path}:{call.lineno} {name} with a non-list command")
    assert bad == []


def test_weights_load_only_through_load_model():
    """No unpickling anywhere, and from_pretrained of weights only in models/load.py (safetensors only)."""
    bad = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        for call in _calls(path):
            name = _name(call.func)
            if name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load", "dill.load"):
                bad.append(f"{rel}:{call.lineno} {name}")
            if name.endswith(".from_pretrained") and rel != "src/featdrift/models/load.py" and "Tokenizer" not in name \
                    and "Config" not in name:
                bad.append(f"{rel}:{call.lineno} {name}")
    assert bad == []


def test_trust_remote_code_comes_only_from_the_config():
    """Every rule passes config['base']['trust_remote_code']; no call hard-codes True."""
    for path in RULE_FILES:
        for line in path.read_text().splitlines():
            if "trust_remote_code=" in line:
                assert line.strip() == 'trust_remote_code=config["base"]["trust_remote_code"],', f"{path}: {line}"
    bad = [f"{path}:{call.lineno}" for path in SOURCES for call in _calls(path)
           for k in call.keywords if k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant) and k.value.value]
    assert bad == []
