"""The tiny model families (base.pretrain.model.family) and tokenizers through every stage's library
entry point, in float32 and bfloat16: pretraining, tokenizer round trip, capture, the CE splice,
steering, lm-eval, SFT and GRPO. Kept to seconds: CI time is tight."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from transformers import AutoTokenizer

from featdrift.activations.capture import capture_shard, run_capture, write_shards
from featdrift.activations.probe import build_probe, read_probe, write_probe
from featdrift.config import load_schema, validate
from featdrift.dictionaries import Dictionary
from featdrift.dictionaries.metrics import _forward, ce_recovered
from featdrift.evaluation.harness import make_hflm, run_lm_eval
from featdrift.evaluation.steered import FeatureEdit, SteeredHFLM, edit_hook
from featdrift.io import write_parquet, write_yaml
from featdrift.models.build import tiny_model
from featdrift.models.hooks import block_hook, decoder_layers
from featdrift.models.load import load_model, load_tokenizer
from featdrift.models.pretrain import pretrain
from featdrift.models.tokenizer import char_tokenizer
from featdrift.tasks.corpus import build_corpus
from featdrift.tasks.lmeval_yaml import task_config
from featdrift.tasks.registry import TASKS, draw_unique
from featdrift.training.grpo import grpo_trainer
from featdrift.training.sft import sft_trainer
from helpers import ROOT, TEST_CONFIG
from helpers.acts import ARCH, make_tasks

TOKENIZER = {"llama": "char", "llama3": "bpe", "qwen2": "bpe", "qwen3": "bpe"}  # llama + char: today's default
MODEL_TYPE = {"llama": "llama", "llama3": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
GQA = {**ARCH, "n_heads": 4, "n_kv_heads": 2}
PRETRAIN = {"steps": 3, "batch_size": 4, "seq_len": 32, "lr": 3e-3, "warmup": 1, "weight_decay": 0.01}
PROBE = {"n_tokens": 200, "seq_len": 32, "generic_share": 0.3}
ACTS = {"shards": 1, "dtype": "float32", "batch_size": 4, "device": "cpu"}
TEXT = "Compute 12+7-5.\n12+7=19\nAnswer:  14. Which is larger: 41 or 14?"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _build(family: str, corpus: pd.DataFrame):
    return pretrain(corpus, {**GQA, "family": family}, PRETRAIN, seed=0, threads=1,
                    tokenizer=TOKENIZER[family], bpe_vocab=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Corpus, task splits and lm-eval task files shared by every family."""
    root = tmp_path_factory.mktemp("families")
    corpus = build_corpus({"n_docs": 200, "mix": {"in_domain": 1, "choice": 1, "generic": 1}}, 0, set(), {})
    files = make_tasks(root)
    include = root / "tasks"
    tasks = []
    for task in ("arithmetic", "compare"):
        test = root / "data" / task / "test.parquet"
        write_parquet(test, pd.DataFrame(draw_unique(task, 1, 4)))
        write_yaml(include / f"{task}.yaml", task_config(task, test, max_gen_toks=6))
        tasks.append(TASKS[task].lm_eval_name)
    rows = pd.read_parquet(files["arithmetic"]).head(4)
    return {"root": root, "corpus": corpus, "files": files, "include": str(include), "tasks": tasks, "rows": rows}


@pytest.fixture(scope="module", params=list(TOKENIZER))
def family(request, world):
    """One family pretrained and saved (model, tokenizer, probe set built with that tokenizer)."""
    fam = request.param
    model, tok, curve = _build(fam, world["corpus"])
    out = world["root"] / fam
    model.save_pretrained(out / "base")
    tok.save_pretrained(out / "base")
    table, meta = build_probe(world["files"], tok, PROBE, seed=0)
    write_probe(out / "probe.parquet", table, meta)
    return {"name": fam, "dir": out, "model": model, "tok": tok, "curve": curve}


def test_family_builds_deterministically_with_its_architecture(family, world):
    fam, model = family["name"], family["model"]
    again, tok, _ = _build(fam, world["corpus"])
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert tok.backend_tokenizer.to_str() == family["tok"].backend_tokenizer.to_str()
    assert family["curve"]["loss"].notna().all()
    cfg = json.loads((family["dir"] / "base/config.json").read_text())
    assert cfg["model_type"] == MODEL_TYPE[fam] and cfg["num_key_value_heads"] == 2 and cfg["num_attention_heads"] == 4
    attn = decoder_layers(model)[0].self_attn
    assert attn.k_proj.out_features == 2 * 8  # GQA: 2 kv heads of head_dim 8
    assert (attn.q_proj.bias is not None) == (fam == "qwen2")
    assert hasattr(attn, "q_norm") == (fam == "qwen3")
    if fam == "llama3":
        rope = cfg["rope_parameters"]
        assert rope["rope_type"] == "llama3" and rope["rope_theta"] == 500000.0 and rope["factor"] == 8.0
    if fam == "qwen3":
        assert cfg["head_dim"] == 8


def test_saved_tokenizer_round_trips(family):
    """Encode/decode keeps spaces and newlines; the saved folder gives the same ids to our loader and to
    AutoTokenizer (transformers 5 rebuilds a qwen2 folder's tokenizer as Qwen2Tokenizer)."""
    tok, path = family["tok"], family["dir"] / "base"
    ids = tok(TEXT)["input_ids"]
    assert tok.decode(ids) == TEXT
    if TOKENIZER[family["name"]] == "bpe":
        assert len(ids) < len(TEXT) and len(tok) == 300
    for loaded in (load_tokenizer(path), AutoTokenizer.from_pretrained(path)):
        assert loaded(TEXT)["input_ids"] == ids and loaded.decode(ids) == TEXT
        assert loaded.padding_side == "left" and loaded.model_max_length == GQA["max_len"]
        assert (loaded.pad_token_id, loaded.eos_token_id) == (tok.pad_token_id, tok.eos_token_id)


def test_char_tokenizer_of_a_qwen2_folder_loads_as_saved(tmp_path):
    """AutoTokenizer would turn it into a Qwen2Tokenizer that drops spaces; load_model keeps it."""
    tok = char_tokenizer(64)
    tiny_model({**GQA, "family": "qwen2"}, tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, loaded = load_model(tmp_path)
    assert loaded(TEXT)["input_ids"] == tok(TEXT)["input_ids"] and loaded.decode(tok(TEXT)["input_ids"]) == TEXT


def train_section() -> dict:
    """The tests' train section (schema defaults filled), cut to one step of two prompts."""
    train = validate(yaml.safe_load(TEST_CONFIG.read_text()), load_schema(ROOT / "schemas/config.schema.yaml"))["train"]
    train.update(batch_size=2, gradient_checkpointing=False)
    train["sft"].update(lr=1e-2, grad_accum=1, max_length=GQA["max_len"])
    train["rl"].update(lr=1e-2, grad_accum=1, num_generations=2, max_completion_length=4)
    return train


def identity_sae(d: int) -> Dictionary:
    """A ReLU SAE that reconstructs exactly: latents relu(x) and relu(-x), decoded as their difference."""
    D = Dictionary(1, d, 2 * d, "relu", cfg={"name": "identity", "layer": 0, "models": ["base"]})
    eye = torch.eye(d)
    with torch.no_grad():
        D.W_enc[0] = torch.cat([eye, -eye], dim=1)
        D.W_dec[0] = torch.cat([eye, -eye], dim=0)
    return D


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_every_stage_runs_on_the_family(family, world, dtype, tmp_path):
    path, probe = family["dir"] / "base", family["dir"] / "probe.parquet"
    model, tok = load_model(path, dtype=dtype)
    assert model.dtype == DTYPES[dtype]
    table, pmeta = read_probe(probe)
    seqs = table.column("token_ids").to_pylist()

    # Capture: block L's output is the forward's hidden_states[L + 1] (the last one is after the final norm).
    ids = torch.tensor([s[:8] for s in seqs[:3]])
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    hooks = [list(b._forward_hooks) for b in decoder_layers(model)]  # transformers' own, kept after hidden_states
    acts = run_capture(model, ids, [0, 1])
    assert torch.equal(acts[0], hs[1]) and torch.equal(model.model.norm(acts[1]), hs[2])
    out = {L: str(tmp_path / f"acts-{L}.parquet") for L in (0, 1)}
    shard_ids = [t for s in seqs for t in s]
    if dtype == "float32":  # the path entry point: loads the model, checks the probe's tokenizer hash
        capture_shard("base", str(path), str(probe), [0, 1], 0, ACTS, out)
    else:
        meta = {"model": "base", "hook": "resid_post", "d_model": 32, "dtype": "float32", "n_rows": len(shard_ids),
                "tokenizer_hash": pmeta["tokenizer_hash"], "probe_hash": pmeta["probe_hash"], "shard": 0, "n_shards": 1}
        write_shards(model, tok.pad_token_id, table.column("seq_id").to_numpy(), seqs, [0, 1], meta, 4, out)
    shard = pq.read_table(out[0])
    assert shard.column("token_id").to_pylist() == shard_ids
    first = torch.tensor(shard.column("act").to_pylist()[: len(seqs[0])])
    with torch.no_grad():
        plain = model(input_ids=torch.tensor([seqs[0]]), output_hidden_states=True).hidden_states[1][0].float()
    torch.testing.assert_close(first, plain, **({} if dtype == "float32" else {"rtol": 0.02, "atol": 0.02}))

    # CE splice: an exact reconstruction (computed in float32) leaves the logits and the loss unchanged.
    D = identity_sae(32)
    clean = _forward(model, ids, 0)
    spliced = _forward(model, ids, 0, replace=lambda h: D.reconstruct(h.float().reshape(-1, 1, 32)).view(h.shape))
    assert spliced.dtype == model.dtype and torch.equal(spliced, clean)
    with torch.no_grad(), block_hook(model, 0, lambda h: h.float()):  # any hook's float32 edit comes back cast
        assert torch.equal(model(input_ids=ids).logits, clean)
    if dtype == "float32":
        ce = ce_recovered(D, [str(path)], str(probe), 0, holdout_every=2, n_sequences=4)["base"]
        assert ce["ce_spliced"] == ce["ce_clean"] == ce["ce_spliced_slice"] and ce["ce_zero_ablated"] != ce["ce_clean"]

    # Steering: c = 1 changes nothing; disabling the live features (all of x here) changes the logits.
    with torch.no_grad():
        with edit_hook(model, 0, FeatureEdit(D, "base", range(64), c=1.0)):
            assert torch.equal(model(ids).logits, clean)
        with edit_hook(model, 0, FeatureEdit(D, "base", range(64), c=0.0)):
            assert not torch.equal(model(ids).logits, clean)
    assert [list(b._forward_hooks) for b in decoder_layers(model)] == hooks

    # lm-eval on a tiny generate and multiple-choice task, plain and through the steered model.
    results, samples = run_lm_eval(make_hflm(model, tok, batch_size=4), world["tasks"], world["include"], limit=4)
    assert all(0.0 <= r.get("exact_match", r.get("acc")) <= 1.0 for r in results.values()) and len(samples) == 8
    steered = SteeredHFLM(model, dictionary=D, dict_model="base", features=[0, 1], scale=1.0, tokenizer=tok, batch_size=4)
    _, same = run_lm_eval(steered, world["tasks"], world["include"], limit=4)
    cols = ["task", "doc_id", "correct", "prediction", "chosen"]
    assert samples[cols].equals(same[cols])

    # SFT and GRPO: one optimizer step each on two prompts, in the model's dtype.
    train = train_section()
    up = decoder_layers(model)[0].mlp.up_proj.weight
    before = up.detach().clone()
    sft = sft_trainer(model, tok, world["rows"], train, 0, str(tmp_path / "sft"), 1, [])
    sft.train()
    assert sft.state.global_step == 1 and math.isfinite(sft.state.log_history[0]["loss"])
    assert up.dtype == DTYPES[dtype] and not torch.equal(up, before)
    rl = grpo_trainer(model, tok, world["rows"], train, 0, str(tmp_path / "rl"), 1, [])
    rl.train()
    log = rl.state.log_history[0]
    assert rl.state.global_step == 1 and 0.0 <= log["reward"] <= 1.0 and log["completions/mean_length"] > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
