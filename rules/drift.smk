# Feature drift (docs/design.md "Drift metrics"), per layer: NRN of the pairwise crosscoders and MAS
# of the three-way crosscoder (both with latent scaling on activations), stabilization of their top-k
# tuned-specific sets, preservation of the base SAE on every checkpoint, and the three-claims table.
# The tables are computed once per dictionary seed offset (drift.seeds): the primary's (offset 0) in
# drift/layer-{L}/, a replica's in drift/layer-{L}/seed-{s}/ (the `_seed` rules); the claims are
# decided over all of them, and seed_match says how far the replicas' latents agree.

DRIFT = config["drift"]
DRIFT_THREADS = DRIFT["threads"] or config["threads"]
CHECKPOINTS = [m for m in MODELS if m != "base"]
SEEDS = sorted(DRIFT["seeds"])


def drift_dir(path):
    return res(f"drift/layer-{{layer}}/{path}")


def seed_dir(path):
    """The drift tables of a replica (dictionary seed offset {seed} > 0)."""
    return res(f"drift/layer-{{layer}}/seed-{{seed}}/{path}")


def drift_file(layer, seed, path):
    return res(f"drift/layer-{layer}/" + (f"seed-{seed}/" if seed else "") + path)


def dict_files(name):
    """weights and cfg of dictionary `name` at the job's layer and seed offset (an input function)."""
    return lambda wc: [
        f"{dict_path(name, wc.layer, seed_offset(wc))}/{f}"
        for f in ("weights.safetensors", "cfg.json")
    ]


def pairwise_files(wildcards):
    return [f for m in CHECKPOINTS for f in dict_files(f"cc-{m}")(wildcards)]


def pairwise_dirs(wildcards):
    return {
        m: dict_path(f"cc-{m}", wildcards.layer, seed_offset(wildcards))
        for m in CHECKPOINTS
    }


def preservation_files(ext):
    """Every model's base-SAE statistics (`ext` parquet or json) at the job's layer and seed offset."""
    return lambda wc: [
        drift_file(wc.layer, seed_offset(wc), f"preservation/{m}.{ext}") for m in MODELS
    ]


def seed_tables(path):
    """Table `path` of every dictionary seed offset, in SEEDS order (the claims read them all)."""
    return lambda wc: [drift_file(wc.layer, s, path) for s in SEEDS]


def seed_dict_files(wildcards):
    return [
        f"{dict_path(name, wildcards.layer, s)}/{f}"
        for name in DICTS
        for s in SEEDS
        for f in ("weights.safetensors", "cfg.json")
    ]


def model_shards(models):
    """Activation shards of `models` at the job's layer, by model (params; `shard_files`: the same paths, as input)."""
    return lambda wc: {m: act_shards(m, wc.layer) for m in models}


def shard_files(models):
    return lambda wc: [p for m in models for p in act_shards(m, wc.layer)]


# Latent scaling reads the held-out probe rows the dictionaries' own metrics use.
SCALING_ROWS = pick(DICT_CFG, "holdout_every", "eval_tokens")


def drift_targets(wildcards=None):
    """The claims table of every layer, once the dictionaries stage and every checkpoint's model can be built."""
    if not (rules.has("crosscoder") and rules.has("sae")):
        return []
    if not all(model_available(m) for m in MODELS):
        return []
    return expand(
        res("drift/layer-{layer}/{name}"),
        layer=LAYERS,
        name=[
            "claims.lineage.json",
            "nrn.lineage.json",
            "stabilization.lineage.json",
            "mas.lineage.json",
            "preservation.lineage.json",
            "seed_match.lineage.json",
        ],
    )


rule drift_nrn:
    input:
        dicts=pairwise_files,
        shards=shard_files(MODELS),
    output:
        features=drift_dir("nrn.parquet"),
        summary=drift_dir("nrn_summary.parquet"),
        hist=report(
            drift_dir("nrn_hist.png"),
            caption="../report/drift_nrn_hist.rst",
            category="Feature drift",
        ),
        plot=report(
            drift_dir("nrn_summary.png"),
            caption="../report/drift_nrn_summary.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("nrn.lineage.json"),
    log:
        logfile("drift/layer-{layer}/nrn"),
    benchmark:
        benchfile("drift/layer-{layer}/nrn")
    conda:
        "../envs/featdrift.yaml"
    threads: DRIFT_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dirs=pairwise_dirs,
        shards=model_shards(MODELS),
        dictionaries=SCALING_ROWS,
        drift=pick(DRIFT, "norm", "nrn", "latent_scaling"),
    script:
        "../scripts/drift_nrn.py"


rule drift_stabilization:
    input:
        nrn=drift_dir("nrn.parquet"),
        dicts=pairwise_files,
    output:
        pairs=drift_dir("stabilization.parquet"),
        summary=drift_dir("stabilization_summary.parquet"),
        plot=report(
            drift_dir("stabilization.png"),
            caption="../report/drift_stabilization.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("stabilization.lineage.json"),
    log:
        logfile("drift/layer-{layer}/stabilization"),
    benchmark:
        benchfile("drift/layer-{layer}/stabilization")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dict_dirs=pairwise_dirs,
        drift=pick(DRIFT, "nrn", "stabilization"),
    script:
        "../scripts/drift_stabilization.py"


rule drift_mas:
    input:
        dicts=dict_files("cc3"),
        shards=shard_files(DICTS["cc3"]),
    output:
        features=drift_dir("mas.parquet"),
        owners=drift_dir("mas_owners.parquet"),
        plot=report(
            drift_dir("mas_owners.png"),
            caption="../report/drift_mas.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("mas.lineage.json"),
    log:
        logfile("drift/layer-{layer}/mas"),
    benchmark:
        benchfile("drift/layer-{layer}/mas")
    conda:
        "../envs/featdrift.yaml"
    threads: DRIFT_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dir=lambda wc: dict_path("cc3", wc.layer, seed_offset(wc)),
        shards=model_shards(DICTS["cc3"]),
        dictionaries=SCALING_ROWS,
        drift=pick(DRIFT, "norm", "mas", "latent_scaling"),
    script:
        "../scripts/drift_mas.py"


rule drift_preservation_model:
    input:
        sae=dict_files("sae-base"),
        shards=lambda wc: act_shards(wc.model, wc.layer),
        # the base's activations on the same probe tokens: what each feature keeps on its base contexts
        base_shards=lambda wc: act_shards("base", wc.layer),
        model=lambda wc: model_dir(wc.model),
        probe=res("probe/probe.parquet"),
    output:
        features=drift_dir("preservation/{model}.parquet"),
        metrics=drift_dir("preservation/{model}.json"),
        lineage=drift_dir("preservation/{model}.lineage.json"),
    log:
        logfile("drift/layer-{layer}/preservation/{model}"),
    benchmark:
        benchfile("drift/layer-{layer}/preservation/{model}")
    conda:
        "../envs/featdrift.yaml"
    threads: DRIFT_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dir=lambda wc: dict_path("sae-base", wc.layer, seed_offset(wc)),
        holdout_every=config["dictionaries"]["holdout_every"],
        max_tokens=config["dictionaries"]["eval_tokens"],
        ce_sequences=config["dictionaries"]["ce_sequences"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/drift_preservation_model.py"


rule drift_preservation:
    input:
        features=preservation_files("parquet"),
        metrics=preservation_files("json"),
    output:
        features=drift_dir("preservation_features.parquet"),
        summary=drift_dir("preservation.parquet"),
        plot=report(
            drift_dir("preservation.png"),
            caption="../report/drift_preservation.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("preservation.lineage.json"),
    log:
        logfile("drift/layer-{layer}/preservation"),
    benchmark:
        benchfile("drift/layer-{layer}/preservation")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=MODELS,
        drift=pick(DRIFT, "preservation"),
    script:
        "../scripts/drift_preservation.py"


# Each replica's tables: the primary's jobs on the replica's dictionaries (the input and params
# functions above follow the `seed` wildcard). Its preservation skips the CE-loss splice (ce_sequences
# 0): that runs every model per checkpoint, and the claims read it from the primary only.
use rule drift_nrn as drift_nrn_seed with:
    output:
        features=seed_dir("nrn.parquet"),
        summary=seed_dir("nrn_summary.parquet"),
        hist=seed_dir("nrn_hist.png"),
        plot=seed_dir("nrn_summary.png"),
        lineage=seed_dir("nrn.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed-{seed}/nrn"),
    benchmark:
        benchfile("drift/layer-{layer}/seed-{seed}/nrn")


use rule drift_stabilization as drift_stabilization_seed with:
    input:
        nrn=seed_dir("nrn.parquet"),
        dicts=pairwise_files,
    output:
        pairs=seed_dir("stabilization.parquet"),
        summary=seed_dir("stabilization_summary.parquet"),
        plot=seed_dir("stabilization.png"),
        lineage=seed_dir("stabilization.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed-{seed}/stabilization"),
    benchmark:
        benchfile("drift/layer-{layer}/seed-{seed}/stabilization")


use rule drift_mas as drift_mas_seed with:
    output:
        features=seed_dir("mas.parquet"),
        owners=seed_dir("mas_owners.parquet"),
        plot=seed_dir("mas_owners.png"),
        lineage=seed_dir("mas.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed-{seed}/mas"),
    benchmark:
        benchfile("drift/layer-{layer}/seed-{seed}/mas")


use rule drift_preservation_model as drift_preservation_model_seed with:
    output:
        features=seed_dir("preservation/{model}.parquet"),
        metrics=seed_dir("preservation/{model}.json"),
        lineage=seed_dir("preservation/{model}.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed-{seed}/preservation/{model}"),
    benchmark:
        benchfile("drift/layer-{layer}/seed-{seed}/preservation/{model}")
    params:
        ce_sequences=0,


use rule drift_preservation as drift_preservation_seed with:
    output:
        features=seed_dir("preservation_features.parquet"),
        summary=seed_dir("preservation.parquet"),
        plot=seed_dir("preservation.png"),
        lineage=seed_dir("preservation.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed-{seed}/preservation"),
    benchmark:
        benchfile("drift/layer-{layer}/seed-{seed}/preservation")


rule drift_claims:
    input:
        nrn=seed_tables("nrn_summary.parquet"),
        stabilization=seed_tables("stabilization_summary.parquet"),
        mas=seed_tables("mas_owners.parquet"),
        preservation=seed_tables("preservation.parquet"),
    output:
        table=drift_dir("claims.parquet"),
        markdown=report(
            drift_dir("claims.md"),
            caption="../report/drift_claims.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("claims.lineage.json"),
    log:
        logfile("drift/layer-{layer}/claims"),
    benchmark:
        benchfile("drift/layer-{layer}/claims")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        seeds=SEEDS,
        drift=pick(
            DRIFT, "nrn", "mas", "stabilization", "preservation", "latent_scaling"
        ),
    script:
        "../scripts/drift_claims.py"


# Latents of each primary dictionary matched one-to-one with each replica's (docs/design.md "Drift metrics").
rule drift_seed_match:
    input:
        dicts=seed_dict_files,
        shards=shard_files(MODELS),
    output:
        table=drift_dir("seed_match.parquet"),
        markdown=report(
            drift_dir("seed_match.md"),
            caption="../report/drift_seed_match.rst",
            category="Feature drift",
        ),
        lineage=drift_dir("seed_match.lineage.json"),
    log:
        logfile("drift/layer-{layer}/seed_match"),
    benchmark:
        benchfile("drift/layer-{layer}/seed_match")
    conda:
        "../envs/featdrift.yaml"
    threads: DRIFT_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dirs=lambda wc: {
            name: {s: dict_path(name, wc.layer, s) for s in SEEDS} for name in DICTS
        },
        shards=model_shards(MODELS),
        dictionaries=SCALING_ROWS,
        drift=pick(DRIFT, "seed_match_cos"),
    script:
        "../scripts/drift_seed_match.py"
