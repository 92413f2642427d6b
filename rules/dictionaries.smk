# The shared feature space: an SAE on base, a pairwise crosscoder (base, checkpoint)
# for every checkpoint, and the three-way crosscoder (base, sft-final, rl-final).
# Each is trained once per dictionary seed offset in drift.seeds: offset 0 (the primary, which
# every later stage reads) in dicts/{name}/layer-{L}/, offset s in dicts/{name}/seed-{s}/layer-{L}/
# (beside the primary's folder, never inside it: a dictionary folder is replaced as a whole).

from featdrift.dictionaries.settings import DictionaryConfig

DICT_CFG = config["dictionaries"]
# Keys only the metrics job reads: changing them remeasures the dictionaries, never retrains them.
METRICS_ONLY = ("eval_tokens", "ce_sequences")
# What training reads: not the metrics' keys, where rows come from (train_inputs), nor job threads.
DICT_TRAIN = DictionaryConfig.training(DICT_CFG)
DICT_THREADS = DICT_CFG["threads"] or config["threads"]
ONLINE = DICT_CFG["online"] if DICT_CFG["source"] == "online" else None
FINAL = [f"{run}-{STEPS[-1]}" for run in RUNS]
# Dictionary name -> the models it reads, in order.
DICTS = {"sae-base": ["base"]}
DICTS.update({f"cc-{m}": ["base", m] for m in MODELS if m != "base"})
DICTS["cc3"] = ["base"] + FINAL
DICT_NAME = r"sae-(base|(sft|rl)-\d+)|cc3|cc-(base|(sft|rl)-\d+)"


def dict_models(name):
    if name.startswith("sae-"):
        return [name[len("sae-") :]]
    return DICTS[name]


def model_available(model):
    """True if the model exists already or some rule of the workflow builds it."""
    path = model_dir(model)
    return Path(path).exists() or any(r.is_producer(path) for r in workflow.rules)


def dict_targets(wildcards=None):
    """metrics.json of every dictionary whose models can be built (crosscoders appear once training rules exist)."""
    names = [n for n, ms in DICTS.items() if all(model_available(m) for m in ms)]
    return expand(
        res("dicts/{name}/layer-{layer}/metrics.json"), name=names, layer=LAYERS
    )


def dict_name(wildcards):
    """The dictionary a job is about, from whichever wildcard its rule names it by."""
    if "dict" in wildcards.keys():
        return wildcards.dict
    return wildcards.name if "name" in wildcards.keys() else f"sae-{wildcards.model}"


def dict_inputs(wildcards):
    models = dict_models(dict_name(wildcards))
    return {
        "shards": [p for m in models for p in act_shards(m, wildcards.layer)],
        "models": [model_dir(m) for m in models],
        "probe": res("probe/probe.parquet"),
    }


def train_inputs(wildcards):
    """A training job's inputs: its models' probe shards, or (online) the models and local corpus files."""
    if ONLINE is None:
        return dict_inputs(wildcards)
    local = [c["path"] for c in ONLINE["corpus"] if is_local(c["path"])]
    return {"models": dict_inputs(wildcards)["models"], "corpus": local}


def train_gpus():
    """A training job's GPUs: one if it trains there or runs its models there (online)."""
    on_gpu = [DICT_CFG["device"]] + ([ONLINE["device"]] if ONLINE else [])
    return int(any(d.startswith("cuda") for d in on_gpu))


def seed_offset(wildcards):
    """The dictionary seed offset a job is about: 0 (the primary) unless its rule names one in `seed`."""
    return int(wildcards.seed) if "seed" in wildcards.keys() else 0


def dict_path(name, layer, seed=0):
    """Folder of dictionary `name` at `layer` trained with seed offset `seed` (0: the primary, where it always was)."""
    return res(f"dicts/{name}/" + (f"seed-{seed}/" if seed else "") + f"layer-{layer}")


def dict_dir(wildcards):
    return dict_path(dict_name(wildcards), wildcards.layer, seed_offset(wildcards))


wildcard_constraints:
    name=r"cc3|cc-(base|(sft|rl)-\d+)",
    # replicas only: offset 0 is the primary's own folder, never seed-0/
    seed=r"[1-9]\d*",


rule sae:
    input:
        unpack(train_inputs),
    output:
        weights=res("dicts/sae-{model}/layer-{layer}/weights.safetensors"),
        cfg=res("dicts/sae-{model}/layer-{layer}/cfg.json"),
        curve=res("dicts/sae-{model}/layer-{layer}/curve.parquet"),
        saelens_cfg=res("dicts/sae-{model}/layer-{layer}/saelens/cfg.json"),
        saelens_weights=res(
            "dicts/sae-{model}/layer-{layer}/saelens/sae_weights.safetensors"
        ),
        lineage=res("dicts/sae-{model}/layer-{layer}/lineage.json"),
    log:
        logfile("dicts/sae-{model}/layer-{layer}"),
    benchmark:
        benchfile("dicts/sae-{model}/layer-{layer}")
    # as soon as base's activations exist: every preservation job waits on it
    priority: 10
    conda:
        "../envs/featdrift.yaml"
    threads: DICT_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpus=train_gpus(),
    params:
        name=dict_name,
        models=lambda wc: dict_models(dict_name(wc)),
        dictionaries=DICT_TRAIN,
        seed=config["seed"],
        saelens=True,
        context_size=config["probe"]["seq_len"],
        out_dir=dict_dir,
        online=ONLINE,
        device=DICT_CFG["device"],
        corpus_seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/dictionary.py"


rule crosscoder:
    input:
        unpack(train_inputs),
    output:
        weights=res("dicts/{name}/layer-{layer}/weights.safetensors"),
        cfg=res("dicts/{name}/layer-{layer}/cfg.json"),
        curve=res("dicts/{name}/layer-{layer}/curve.parquet"),
        lineage=res("dicts/{name}/layer-{layer}/lineage.json"),
    log:
        logfile("dicts/{name}/layer-{layer}"),
    benchmark:
        benchfile("dicts/{name}/layer-{layer}")
    conda:
        "../envs/featdrift.yaml"
    threads: DICT_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpus=train_gpus(),
    params:
        name=dict_name,
        models=lambda wc: dict_models(dict_name(wc)),
        dictionaries=DICT_TRAIN,
        seed=config["seed"],
        saelens=False,
        context_size=config["probe"]["seq_len"],
        out_dir=dict_dir,
        online=ONLINE,
        device=DICT_CFG["device"],
        corpus_seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/dictionary.py"


# Replicas of every dictionary from another seed offset, for the claims over seeds and the seed match
# (rules/drift.smk): the same training as sae and crosscoder, without the SAELens export or a metrics job.
rule dictionary_seed:
    input:
        unpack(train_inputs),
    output:
        weights=res("dicts/{dict}/seed-{seed}/layer-{layer}/weights.safetensors"),
        cfg=res("dicts/{dict}/seed-{seed}/layer-{layer}/cfg.json"),
        curve=res("dicts/{dict}/seed-{seed}/layer-{layer}/curve.parquet"),
        lineage=res("dicts/{dict}/seed-{seed}/layer-{layer}/lineage.json"),
    log:
        logfile("dicts/{dict}/seed-{seed}/layer-{layer}"),
    benchmark:
        benchfile("dicts/{dict}/seed-{seed}/layer-{layer}")
    wildcard_constraints:
        dict=DICT_NAME,
    conda:
        "../envs/featdrift.yaml"
    threads: DICT_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpus=train_gpus(),
    params:
        name=dict_name,
        models=lambda wc: dict_models(dict_name(wc)),
        dictionaries=DICT_TRAIN,
        seed=lambda wc: config["seed"] + seed_offset(wc),
        saelens=False,
        context_size=0,  # only the SAELens export reads it
        out_dir=dict_dir,
        online=ONLINE,
        device=DICT_CFG["device"],
        corpus_seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/dictionary.py"


# Reconstruction (FVU, L0, dead latents) on held-out probe rows and CE-loss recovered, per model.
rule dictionary_metrics:
    input:
        unpack(dict_inputs),
        weights=res("dicts/{dict}/layer-{layer}/weights.safetensors"),
        cfg=res("dicts/{dict}/layer-{layer}/cfg.json"),
    output:
        metrics=res("dicts/{dict}/layer-{layer}/metrics.json"),
        lineage=res("dicts/{dict}/layer-{layer}/metrics.lineage.json"),
    log:
        logfile("dicts/{dict}/layer-{layer}-metrics"),
    benchmark:
        benchfile("dicts/{dict}/layer-{layer}-metrics")
    wildcard_constraints:
        dict=DICT_NAME,
    conda:
        "../envs/featdrift.yaml"
    threads: DICT_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=lambda wc: dict_models(dict_name(wc)),
        dictionaries=pick(DICT_CFG, "holdout_every", *METRICS_ONLY),
        trust_remote_code=config["base"]["trust_remote_code"],
        dict_dir=dict_dir,
    script:
        "../scripts/dictionary_metrics.py"
