"""`featdrift plan`: jobs, GPU-hours, disk and peak GPU memory of every stage of a config, before it runs.

Every figure is a FLOP or byte count of the configured work over a GPU constant, so that a paper-scale
config can be sized (and a stage that cannot fit one GPU caught) without downloading its model
(docs/design.md "Planning"). What goes in:
- the model's shape: base.pretrain.model, a config.json on disk (local folder or Hugging Face cache),
  or KNOWN, the published config.json fields of the paper's hub models;
- measured here, on CPU with transformers' tiny models of each family (benchmarks/plan_constants.py):
  the parameter count (Card.params, exact) and ACT, the bytes a training forward saves per token;
- assumed: the config's `plan` section (GPU peak throughput, bandwidth, MFU, prompt length) and
  LM_EVAL, the sizes of lm-eval's tasks.
Sequences count at their longest (train.sft.max_length, train.rl.max_completion_length, a task's
max_gen_toks): the work and memory are upper bounds. GPU-hours of a multi-GPU job are summed over
its GPUs; memory is one GPU's peak. The activation-store bytes are also the disk budget guard's
(activations.budget), which runs when the DAG is built: nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import ClassVar

from .config import ConfigError
from .settings import Section

ROOT = Path(__file__).resolve().parents[2]
DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
INDEX_BYTES = 3 * 4  # seq_id, pos, token_id of every activation-store row
WEIGHT_BYTES = 4  # models are loaded, trained and saved in float32 (featdrift.models.load)
ADAM_BYTES = 16  # float32 weights, gradients and Adam's two moments, per parameter
RESUME_BYTES = 12  # a trainer checkpoint in .resume/: float32 weights and Adam moments, per parameter
VLLM_MEMORY = 0.3  # GPU memory share of a colocated vLLM engine (trl's vllm_gpu_memory_utilization default)
FEATURE_ROW_BYTES = 64  # one per-feature row of a drift or selection table (assumed)
CE_FORWARDS = 4  # CE recovered, per model: clean, then spliced jointly, by its slice, zero-ablated (dictionaries.metrics)
SAMPLE_BYTES = 256  # one lm-eval sample row besides its generation, 4 bytes a generated token (assumed)

# config.json fields (those Card reads) of the hub models of configs/*.yaml, as published.
KNOWN = {
    "Qwen/Qwen3-4B-Base": dict(model_type="qwen3", hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                               num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                               tie_word_embeddings=True, max_position_embeddings=32768),
    "Qwen/Qwen2.5-7B": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                            num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False,
                            max_position_embeddings=131072),
    "meta-llama/Llama-3.1-8B": dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                    num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=128256,
                                    tie_word_embeddings=False, max_position_embeddings=131072),
}

# Bytes a training forward saves for backward, per token. Per block: coefficients of (d_model, d_ff,
# query dims, key/value dims, heads), keyed by (family, bf16 autocast); once per token (the loss's
# float32 logits, the final norm, the rotary tables): of (vocab, d_model, head_dim). Measured
# (benchmarks/plan_constants.py): autograd's saved tensors of transformers' tiny models on CPU (sdpa
# attention, float32 weights, with and without bf16 autocast), a least-squares fit over 12 shapes,
# rounded (off by < 50 bytes a token; checkpointed, < 4 x head_dim: the rotary tables are not kept).
# llama3 and qwen2 save what llama saves; qwen3 adds its q/k norms. With gradient checkpointing a block
# keeps only its float32 input (4 x d_model, measured), and one block at a time is recomputed in full
# during backward (assumed).
ACT = {("llama", True): (26, 8, 4, 4, 6), ("llama", False): (24, 16, 8, 8, 6),
       ("qwen3", True): (26, 8, 10, 10, 12), ("qwen3", False): (24, 16, 16, 16, 12)}
ACT_HEAD = {True: (4, 10, 4), False: (4, 12, 4)}
ACT_CHECKPOINTED = 4

# lm-eval task -> (items, choices (0: generation), tokens per request, generated tokens). Items: the
# task's evaluation split; choices: answer options (one forward each); tokens: a rough mean of the
# prompt with its few-shot examples and one answer (assumed); generated: the task's max_gen_toks
# (lm-eval's default 256 where its YAML sets none).
LM_EVAL = {
    "minerva_math500": (500, 0, 1000, 256), "hendrycks_math500": (500, 0, 150, 256),
    "aime24": (30, 0, 150, 32768), "aime25": (30, 0, 150, 32768), "gsm8k": (1319, 0, 900, 256),
    "openbookqa": (500, 4, 35, 0), "commonsense_qa": (1221, 5, 75, 0), "headqa_en": (2742, 4, 50, 0),
    "sciq": (1000, 4, 320, 0), "arc_challenge": (1172, 4, 50, 0), "logiqa": (651, 4, 260, 0),
    "piqa": (1838, 2, 45, 0), "hellaswag": (10042, 4, 120, 0), "winogrande": (1267, 2, 35, 0),
    "mmlu": (14042, 4, 110, 0),
}


@dataclasses.dataclass(frozen=True)
class PlanSettings(Section):
    """The `plan` section: GPU constants and assumptions (no job reads them)."""

    gpu_tflops: float
    fp32_tflops: float
    hbm_tbps: float
    gpu_memory_gb: float
    mfu: float
    prompt_tokens: int
    path: ClassVar[str] = "plan"

    def compute_h(self, flops: float, bf16: bool) -> float:
        return flops / ((self.gpu_tflops if bf16 else self.fp32_tflops) * 1e12 * self.mfu) / 3600

    def decode_h(self, card: Card, steps: float, rows: int, context: float, weight_bytes: int, bf16: bool) -> float:
        """`steps` decoding steps of `rows` sequences at a mean `context`: a step computes `rows` tokens
        and reads the weights and the KV cache once, whichever takes longer (a roofline)."""
        read = card.matmul_params * weight_bytes + rows * context * card.kv_bytes(2 if bf16 else 4)
        return steps * max(self.compute_h(card.flops(rows, context), bf16), read / (self.hbm_tbps * 1e12) / 3600)


@dataclasses.dataclass(frozen=True)
class Card:
    """A decoder-only transformer's shape, what its FLOPs and bytes follow from."""

    family: str  # llama, llama3, qwen2, qwen3 (another model type counts as llama)
    d_model: int
    n_layers: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    context: int | None = None  # positions the model takes (lm-eval's max_length)
    source: str = ""

    @property
    def q(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def block(self) -> int:
        """Parameters of one decoder block (transformers' Llama, Qwen2 and Qwen3 layers)."""
        d = self.d_model
        n = 2 * d * self.q + 2 * d * self.kv + 3 * d * self.d_ff + 2 * d
        return n + (self.q + 2 * self.kv if self.family == "qwen2" else 0) + (2 * self.head_dim if self.family == "qwen3" else 0)

    @property
    def params(self) -> int:
        return self.n_layers * self.block + self.vocab * self.d_model * (1 if self.tied else 2) + self.d_model

    @property
    def matmul_params(self) -> int:
        return self.n_layers * self.block + self.vocab * self.d_model  # the input embedding is a lookup

    def flops(self, tokens: float, attended: float, layers: int | None = None) -> float:
        """Forward FLOPs of `tokens` tokens attending to `attended` positions each on average: 2 per
        matmul weight, 4 per query dim and attended key; `layers`: blocks 0..layers-1 only, no head."""
        n = self.n_layers if layers is None else layers
        weights = n * self.block + (self.vocab * self.d_model if layers is None else 0)
        return tokens * (2 * weights + 4 * n * self.q * attended)

    def kv_bytes(self, dtype_bytes: int) -> int:
        return 2 * self.n_layers * self.kv * dtype_bytes

    def block_act_bytes(self, bf16: bool) -> int:
        """Bytes one block saves for backward per token (ACT)."""
        a = ACT[("qwen3" if self.family == "qwen3" else "llama", bf16)]
        return a[0] * self.d_model + a[1] * self.d_ff + a[2] * self.q + a[3] * self.kv + a[4] * self.n_heads

    def act_bytes(self, bf16: bool, checkpointing: bool) -> int:
        """Training activation bytes per token: the blocks' (checkpointed: their inputs, and one block
        recomputed) and the head's."""
        v, d, h = ACT_HEAD[bf16]
        block = self.block_act_bytes(bf16)
        body = self.n_layers * ACT_CHECKPOINTED * self.d_model + block if checkpointing else self.n_layers * block
        return body + v * self.vocab + d * self.d_model + h * self.head_dim


# --- the model -----------------------------------------------------------------------------------------

def _first(cfg: dict, *keys):
    return next((cfg[k] for k in keys if isinstance(cfg.get(k), int)), None)


def hf_config(name: str) -> tuple[dict, str] | None:
    """(config.json fields, where from) of a local model folder, a hub model in the local Hugging Face
    cache (no network), or KNOWN; None when none has it."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    snapshots = home / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    for path in [Path(name) / "config.json"] + found[-1:]:
        if path.is_file():
            try:
                cfg = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            return cfg.get("text_config") or cfg, str(path)
    return (KNOWN[name], "featdrift.plan.KNOWN") if name in KNOWN else None


def width(config: dict) -> int | None:
    """Residual width: the pretrain config, storage.d_model, or the model's config.json (None: unknown)."""
    base = config["base"]
    if not base.get("pretrained"):
        return base["pretrain"]["model"]["d_model"]
    if config.get("storage", {}).get("d_model"):
        return config["storage"]["d_model"]
    found = hf_config(base["pretrained"])
    return found and _first(found[0], "hidden_size", "d_model", "n_embd")


def model_card(config: dict) -> Card:
    """The base model's Card: the tiny model's from its section (vocabulary from its tokenizer), a
    hub model's from hf_config; a ConfigError where neither is known."""
    base = config["base"]
    if not base.get("pretrained"):
        pre, m = base["pretrain"], base["pretrain"]["model"]
        if pre.get("tokenizer", "char") == "bpe":
            vocab = pre["bpe_vocab"]
        else:
            from .models.tokenizer import CHARS, SPECIALS
            vocab = len(SPECIALS) + len(CHARS)
        return Card(m.get("family", "llama"), m["d_model"], m["n_layers"], m["d_ff"], m["n_heads"],
                    m.get("n_kv_heads") or m["n_heads"], m["d_model"] // m["n_heads"], vocab, True, m["max_len"],
                    "base.pretrain.model")
    found = hf_config(base["pretrained"])
    if found is None:
        raise ConfigError(f"base.pretrained: the shape of {base['pretrained']!r} is unknown (no config.json on disk, "
                          "not in featdrift.plan.KNOWN): download its config.json or add it to KNOWN")
    return card_from_hf(*found)


def card_from_hf(c: dict, where: str) -> Card:
    """The Card of a transformers config.json."""
    try:
        d, heads = _first(c, "hidden_size", "d_model", "n_embd"), _first(c, "num_attention_heads", "n_head")
        return Card(c.get("model_type", "llama"), d, _first(c, "num_hidden_layers", "n_layer"),
                    _first(c, "intermediate_size", "n_inner") or 4 * d, heads, c.get("num_key_value_heads") or heads,
                    c.get("head_dim") or d // heads, c["vocab_size"], bool(c.get("tie_word_embeddings", False)),
                    _first(c, "max_position_embeddings", "n_positions", "n_ctx"), where)
    except (KeyError, TypeError) as e:
        raise ConfigError(f"base.pretrained: {where} lacks a field the plan needs ({e})") from None


# --- the work --------------------------------------------------------------------------------------------

def store_bytes(config: dict, n_models: int, d_model: int) -> int:
    """Activation-store bytes: one row per probe token, model and layer (seq_id, pos, token_id and
    d_model activations of activations.dtype; Parquet barely compresses float activations)."""
    acts = config["activations"]
    return config["probe"]["n_tokens"] * len(acts["layers"]) * n_models * (d_model * DTYPE_BYTES[acts["dtype"]] + INDEX_BYTES)


def checkpoint_steps(config: dict) -> list[int]:
    """The runs' checkpoint steps, as rules/common.smk fixes them (so the model count is the DAG's)."""
    from .training.schedule import checkpoint_steps as steps

    tr = config["train"]
    return steps(config["data"]["n_train"], tr["batch_size"], tr["epochs"], tr["checkpoints_per_epoch"])


def dict_params(n_latents: int, n_models: int, d_model: int) -> int:
    """Parameters of a dictionary over n_models models: W_enc, W_dec (M x d x n each), b_enc, b_dec."""
    return 2 * n_models * d_model * n_latents + n_latents + n_models * d_model


def eval_roles(config: dict) -> dict[str, list[str]]:
    """Role -> the lm-eval tasks evaluated in it (the built-in names, or the synthetic world's)."""
    builtin = config["eval"]["builtin_tasks"]
    if builtin:
        return {r: list(builtin.get(r, [])) for r in ("in_domain", "ood", "heldout")}
    from .tasks.registry import IN_DOMAIN

    return {"in_domain": [IN_DOMAIN], "ood": config["data"]["ood_tasks"], "heldout": config["data"]["heldout_tasks"]}


@dataclasses.dataclass
class Stage:
    """One row of the plan."""

    name: str
    jobs: int
    gpu_hours: float
    disk_bytes: float
    peak_gpu_bytes: float  # one GPU's peak; 0: no GPU job
    note: str = ""


class Planner:
    """The stages of one validated config."""

    def __init__(self, config: dict):
        self.c, self.card, self.gpu = config, model_card(config), PlanSettings.from_config(config["plan"])
        self.steps = checkpoint_steps(config)
        self.models = 1 + 2 * len(self.steps)  # base and every checkpoint of both runs
        self.dicts = [1] + [2] * (self.models - 1) + [3]  # sae-base, cc-{checkpoint}, cc3: models each reads
        self.layers, self.seeds = config["activations"]["layers"], config["drift"]["seeds"]
        self.assumed: set[str] = set()  # tasks not in LM_EVAL
        self.warnings: set[str] = set()

    @property
    def weights(self) -> int:
        return self.card.params * WEIGHT_BYTES

    def task(self, name: str) -> tuple[int, int, int, int]:
        """(items, choices, tokens per request, generated tokens) of an evaluated task (LM_EVAL)."""
        c = self.c
        if c["eval"]["builtin_tasks"]:
            if name not in LM_EVAL:
                self.assumed.add(name)
            items, choices, tokens, gen = LM_EVAL.get(name, (1000, 4, self.gpu.prompt_tokens, 0))
            gen = min(gen, c["eval"]["builtin_max_gen_toks"] or gen)  # the harness's cap (EvalSettings.gen_kwargs)
        else:
            from .tasks.registry import TASKS

            generate = TASKS[name].kind == "generate"
            items, choices, tokens, gen = c["data"]["n_test"], 0 if generate else 4, c["probe"]["seq_len"], c["eval"]["max_gen_toks"] if generate else 0
        return min(items, c["eval"]["limit"] or items), choices, tokens, gen

    def evaluation(self, tasks: list[str]) -> tuple[float, float, float]:
        """(GPU-hours, peak bytes, sample bytes) of one lm-eval run over `tasks`: float32 weights, no
        autocast (featdrift.evaluation.run); multiple choice keeps the batch's logits and log-softmax."""
        g, card, bs = self.gpu, self.card, self.c["eval"]["batch_size"]
        hours, peak, disk = 0.0, 0.0, 0.0
        for t in tasks:
            items, choices, tokens, gen = self.task(t)
            disk += items * (SAMPLE_BYTES + 4 * gen)
            if choices:
                hours += g.compute_h(card.flops(items * choices * tokens, tokens / 2), False)
                peak = max(peak, bs * tokens * card.vocab * 8)
            else:
                if card.context and gen >= card.context:  # HFLM asserts max_length - max_gen_toks > 0
                    self.warnings.add(f"{t}: generates up to {gen} tokens, not less than the model's context "
                                      f"{card.context}: lm-eval refuses the task")
                rows = min(bs, items)
                hours += g.compute_h(card.flops(items * tokens, tokens / 2), False)
                hours += math.ceil(items / rows) * g.decode_h(card, gen, rows, tokens + gen / 2, WEIGHT_BYTES, False)
                peak = max(peak, rows * (tokens + gen) * card.kv_bytes(4))
        return hours, self.weights + peak, disk

    def base(self) -> Stage:
        pre = None if self.c["base"]["pretrained"] else self.c["base"]["pretrain"]["train"]
        if pre is None:
            return Stage("base import", 1, 0.0, self.weights, 0, "CPU job: the hub weights saved in float32")
        card, tokens = self.card, pre["steps"] * pre["batch_size"] * pre["seq_len"]
        mem = card.params * ADAM_BYTES + pre["batch_size"] * pre["seq_len"] * card.act_bytes(False, False)
        return Stage("base pretrain", 1, self.gpu.compute_h(3 * card.flops(tokens, pre["seq_len"] / 2), False),
                     self.weights, mem, "the tiny model, pretrained (on CPU in practice)")

    def _trained(self, name: str, hours: float, peak: float, note: str) -> Stage:
        """A training run: its checkpoints and one trainer checkpoint in .resume/ (weights and Adam)."""
        if self.c["calibration"]:
            return Stage(name, 0, 0.0, 0, 0, "calibration: checkpoints are planted, not trained")
        disk = len(self.steps) * self.weights + self.card.params * RESUME_BYTES
        return Stage(name, 1, hours, disk, peak, note)

    def sft(self) -> Stage:
        tr, card = self.c["train"], self.card
        s, T, gc = tr["sft"], tr["sft"]["max_length"], tr["gradient_checkpointing"]
        rows = self.steps[-1] * tr["batch_size"]
        hours = self.gpu.compute_h((4 if gc else 3) * card.flops(rows * T, T / 2), tr["bf16"])
        micro = tr["batch_size"] // (s["grad_accum"] * tr["num_processes"])
        peak = card.params * ADAM_BYTES + micro * T * card.act_bytes(tr["bf16"], gc)
        return self._trained("SFT", hours, peak, f"{rows} rows x {T} tokens, {micro} per GPU micro-batch")

    def grpo(self) -> Stage:
        tr, card, g = self.c["train"], self.card, self.gpu
        rl, bf16, gc, procs = tr["rl"], tr["bf16"], tr["gradient_checkpointing"], tr["num_processes"]
        P, C, vllm = g.prompt_tokens, rl["max_completion_length"], rl["use_vllm"]
        T, rows = P + C, self.steps[-1] * tr["batch_size"] * rl["num_generations"]
        per_gpu = tr["batch_size"] * rl["num_generations"] // procs  # generated together, once a step
        # generation: vLLM holds bf16 weights; trl's generate reads the float32 ones under autocast
        gen = procs * self.steps[-1] * g.decode_h(card, C, per_gpu, P + C / 2, 2 if vllm else WEIGHT_BYTES, bf16 or vllm)
        gen += g.compute_h(card.flops(rows * P, P / 2), bf16 or vllm)
        # forward + backward (+ recompute), + the reference model (beta > 0), + vLLM's old log-probs
        passes = (4 if gc else 3) + (rl["beta"] > 0) + vllm
        hours = gen + g.compute_h(passes * card.flops(rows * T, T / 2), bf16)
        micro = per_gpu // rl["grad_accum"]
        train = micro * T * card.act_bytes(bf16, gc)
        fixed = card.params * (ADAM_BYTES + (WEIGHT_BYTES if rl["beta"] > 0 else 0))
        peak = fixed + (VLLM_MEMORY * g.gpu_memory_gb * 1e9 + train if vllm else
                        max(train, per_gpu * T * card.kv_bytes(2 if bf16 else 4)))
        return self._trained("GRPO", hours, peak, f"{rows} completions of <= {C} tokens, generated by "
                             + ("vLLM (colocated)" if vllm else "transformers' generate"))

    def eval(self) -> Stage:
        hours, peak, disk = self.evaluation([t for ts in eval_roles(self.c).values() for t in ts])
        return Stage("eval", self.models + 1, self.models * hours, self.models * disk, peak, f"{self.models} models")

    def capture(self) -> Stage:
        card, p, acts = self.card, self.c["probe"], self.c["activations"]
        fwd = card.flops(p["n_tokens"], p["seq_len"] / 2, layers=max(self.layers) + 1)
        transient = acts["batch_size"] * p["seq_len"] * (4 * card.d_model + 2 * card.d_ff) * 4  # assumed
        return Stage("probe capture", 1 + self.models * acts["shards"], self.models * self.gpu.compute_h(fwd, False),
                     store_bytes(self.c, self.models, card.d_model), self.weights + transient,
                     f"{p['n_tokens']} probe tokens x {len(self.layers)} layers x {self.models} models")

    def dictionaries(self) -> Stage:
        d, card, g, dm = self.c["dictionaries"], self.card, self.gpu, self.card.d_model
        online, on, seq = d["source"] == "online", d["online"], self.c["probe"]["seq_len"]
        hours = disk = peak = 0.0
        for M in self.dicts:
            P = dict_params(d["n_latents"], M, dm)
            train = g.compute_h(6 * (P - d["n_latents"]) * d["tokens"], False)  # dense matmuls, float32
            ce = M * g.compute_h(CE_FORWARDS * card.flops(d["ce_sequences"] * seq, seq / 2), False)
            models = 0
            for L in self.layers:
                fwd = 0.0
                if online:  # each job runs its M models up to the layer on its own token stream
                    fwd = M * g.compute_h(card.flops(d["tokens"], on["seq_len"] / 2, layers=L + 1), on["dtype"] == "bfloat16")
                    models = M * card.params * DTYPE_BYTES[on["dtype"]]
                hours += len(self.seeds) * (train + fwd) + ce  # metrics (CE recovered) of the primary only
            disk += len(self.layers) * len(self.seeds) * P * 4 + (len(self.layers) * P * 4 if M == 1 else 0)  # + SAELens export
            peak = max(peak, P * ADAM_BYTES + models, self.weights + P * 4)  # training; metrics (a model at a time)
        n = len(self.dicts) * len(self.layers)
        return Stage("dictionaries", n * len(self.seeds) + n, hours, disk, peak,
                     f"{n * len(self.seeds)} trainings of {d['tokens']:.3g} tokens ({d['source']}), {n} metrics jobs")

    def drift(self) -> Stage:
        M, S, n, p, d = self.models, len(self.seeds), self.c["dictionaries"]["n_latents"], self.c["probe"], self.c["dictionaries"]
        jobs = len(self.layers) * (6 + M + (S - 1) * (4 + M))
        ce = CE_FORWARDS * self.card.flops(d["ce_sequences"] * p["seq_len"], p["seq_len"] / 2)  # the primary's CE splice
        rows = len(self.layers) * S * n * (2 * M + 1 + len(self.dicts))
        return Stage("drift", jobs, len(self.layers) * M * self.gpu.compute_h(ce, False), rows * FEATURE_ROW_BYTES,
                     self.weights + dict_params(n, 1, self.card.d_model) * 4, "tables on CPU; preservation's CE splice on GPU")

    def _select_dict(self) -> int:
        return dict_params(self.c["dictionaries"]["n_latents"], 3 if self.c["select"]["dictionary"] == "cc3" else 2, self.card.d_model) * 4

    def selection(self) -> Stage:
        ood, card = eval_roles(self.c)["ood"], self.card
        tokens = sum(self.task(t)[0] * self.task(t)[2] for t in ood)  # every OOD prompt, at most
        hours = 2 * self.gpu.compute_h(card.flops(tokens, self.gpu.prompt_tokens / 2), False)
        n = self.c["dictionaries"]["n_latents"]
        return Stage("selection", 1, hours, n * (len(ood) + 2) * FEATURE_ROW_BYTES, 2 * self.weights + self._select_dict(),
                     "base and RL model read on the OOD prompts")

    def interventions(self) -> Stage:
        iv, roles = self.c["intervene"], eval_roles(self.c)
        tasks = [t for r in iv["roles"] for t in roles[r]]
        runs = (2 + iv["n_random"]) + (1 + len(iv["alphas"]) * (1 + iv["n_random"]))  # disable, amplify
        hours, peak, disk = self.evaluation(tasks)
        return Stage("interventions", 3, runs * hours, runs * disk, peak + self._select_dict(),
                     f"{runs} lm-eval runs over {len(tasks)} tasks")

    def stages(self) -> list[Stage]:
        return [self.base(), self.sft(), self.grpo(), self.eval(), self.capture(), self.dictionaries(), self.drift(),
                self.selection(), self.interventions()]


def plan(config: dict) -> dict:
    """The plan of a validated config as plain data (what --json prints)."""
    p = Planner(config)
    stages = p.stages()
    totals = {"jobs": sum(s.jobs for s in stages), "gpu_hours": sum(s.gpu_hours for s in stages),
              "disk_bytes": sum(s.disk_bytes for s in stages), "peak_gpu_bytes": max(s.peak_gpu_bytes for s in stages)}
    card = dataclasses.asdict(p.card) | {"params": p.card.params}
    return {"model": config["base"]["pretrained"] or "base.pretrain", "card": card, "gpu": config["plan"],
            "stages": [dataclasses.asdict(s) for s in stages], "totals": totals, "assumed_tasks": sorted(p.assumed),
            "warnings": sorted(p.warnings)}


def _size(n: float) -> str:
    if not n:
        return "-"
    for unit, k in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n:.0f} B"


def table(p: dict) -> str:
    c, g = p["card"], p["gpu"]
    limit = g["gpu_memory_gb"] * 1e9
    lines = [f"model: {p['model']} ({c['family']}, {c['params'] / 1e9:.3g}B parameters, d_model {c['d_model']}, "
             f"{c['n_layers']} layers; shape from {c['source']})",
             f"GPU: {g['gpu_tflops']:g} TFLOP/s bf16, {g['fp32_tflops']:g} fp32, {g['hbm_tbps']:g} TB/s, "
             f"{g['gpu_memory_gb']:g} GB, MFU {g['mfu']:g}", "",
             f"{'stage':<15}{'jobs':>6}{'GPU-h':>10}{'disk':>11}{'peak GPU mem':>19}  note"]
    for s in p["stages"] + [dict(name="total", **p["totals"], note="(peak: the largest)")]:
        over = " > GPU" if s["peak_gpu_bytes"] > limit else ""
        lines.append(f"{s['name']:<15}{s['jobs']:>6}{s['gpu_hours']:>10.1f}{_size(s['disk_bytes']):>11}"
                     f"{_size(s['peak_gpu_bytes']) + over:>19}  {s['note']}")
    lines += ["", "Upper bounds: sequences at their longest. Measured here: parameter counts, activation bytes per token "
              "(benchmarks/plan_constants.py); assumed: the plan section and lm-eval task sizes (featdrift.plan.LM_EVAL)."]
    if p["assumed_tasks"]:
        lines.append(f"Not in LM_EVAL, sized as 1000 four-choice items: {', '.join(p['assumed_tasks'])}")
    lines += [f"warning: {w}" for w in p["warnings"]]
    return "\n".join(lines)


def load_config(files: list[str | Path]) -> dict:
    """The embedded config.yaml with `files` over it, key by key as Snakemake merges them, validated."""
    import yaml

    from .config import load_schema, validate

    def merged(a, b):
        return {**a, **{k: merged(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v for k, v in b.items()}}

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for f in files:
        config = merged(config, yaml.safe_load(Path(f).read_text()) or {})
    return validate(config, load_schema(ROOT / "schemas" / "config.schema.yaml"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="featdrift plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", default=[], help="config files over config.yaml, as for snakemake")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = ap.parse_args(argv)
    try:
        p = plan(load_config(args.configfile))
    except (ConfigError, OSError) as e:
        sys.exit(f"featdrift plan: {e}")
    print(json.dumps(p, indent=2) if args.json else table(p))


if __name__ == "__main__":
    main()
