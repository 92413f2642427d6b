"""The work side of the plan: each stage's jobs, GPU-hours, disk and one GPU's peak memory, as FLOP and
byte counts of the configured work over the `plan` section's GPU constants (featdrift.plan)."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from ..settings import Section
from .card import Card, model_card

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
INDEX_BYTES = 3 * 4  # seq_id, pos, token_id of every activation-store row
WEIGHT_BYTES = 4  # models are loaded, trained and saved in float32 (featdrift.models.load)
ADAM_BYTES = 16  # float32 weights, gradients and Adam's two moments, per parameter
RESUME_BYTES = 12  # a trainer checkpoint in .resume/: float32 weights and Adam moments, per parameter
VLLM_MEMORY = 0.3  # GPU memory share of a colocated vLLM engine (trl's vllm_gpu_memory_utilization default)
FEATURE_ROW_BYTES = 64  # one per-feature row of a drift or selection table (assumed)
CE_FORWARDS = 4  # CE recovered, per model: clean, then spliced jointly, by its slice, zero-ablated (dictionaries.metrics)
SAMPLE_BYTES = 256  # one lm-eval sample row besides its generation, 4 bytes a generated token (assumed)

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
    tf32_tflops: float
    hbm_tbps: float
    gpu_memory_gb: float
    mfu: float
    prompt_tokens: int
    path: ClassVar[str] = "plan"

    def compute_h(self, flops: float, bf16: bool, tf32: bool = False) -> float:
        """Hours at the bf16 peak, else the TF32 peak (`tf32`: dictionary training on CUDA) or the FP32 one."""
        peak = self.gpu_tflops if bf16 else self.tf32_tflops if tf32 else self.fp32_tflops
        return flops / (peak * 1e12 * self.mfu) / 3600

    def decode_h(self, card: Card, steps: float, rows: int, context: float, weight_bytes: int, bf16: bool) -> float:
        """`steps` decoding steps of `rows` sequences at a mean `context`: a step computes `rows` tokens
        and reads the weights and the KV cache once, whichever takes longer (a roofline)."""
        read = card.matmul_params * weight_bytes + rows * context * card.kv_bytes(2 if bf16 else 4)
        return steps * max(self.compute_h(card.flops(rows, context), bf16), read / (self.hbm_tbps * 1e12) / 3600)


def store_bytes(config: dict, n_models: int, d_model: int) -> int:
    """Activation-store bytes: one row per probe token, model and layer (seq_id, pos, token_id and
    d_model activations of activations.dtype; Parquet barely compresses float activations)."""
    acts = config["activations"]
    return config["probe"]["n_tokens"] * len(acts["layers"]) * n_models * (d_model * DTYPE_BYTES[acts["dtype"]] + INDEX_BYTES)


def checkpoint_steps(config: dict) -> list[int]:
    """The runs' checkpoint steps, as rules/common.smk fixes them (so the model count is the DAG's)."""
    from ..training.schedule import checkpoint_steps as steps

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
    from ..tasks.registry import IN_DOMAIN

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
            from ..tasks.registry import TASKS

            generate = TASKS[name].kind == "generate"
            items, choices, tokens, gen = c["data"]["test_sizes"].get(name, c["data"]["n_test"]), 0 if generate else 4, c["probe"]["seq_len"], c["eval"]["max_gen_toks"] if generate else 0
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
            train = g.compute_h(6 * (P - d["n_latents"]) * d["tokens"], False, tf32=True)  # dense float32 matmuls on TF32
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
