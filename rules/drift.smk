# Feature drift (docs/design.md "Drift metrics"), per layer: NRN of the pairwise crosscoders and MAS
# of the three-way crosscoder (both with latent scaling on activations), stabilization of their top-k
# tuned-specific sets, preservation of the base SAE on every checkpoint, and the three-claims table.

DRIFT = config["drift"]
CHECKPOINTS = [m for m in MODELS if m != "base"]


def drift_dir(path):
    return res(f"drift/layer-{{layer}}/{path}")


def dict_files(name):
    """weights and cfg of dictionary `name` at the job's layer (an input function)."""
    return lambda wc: [
        res(f"dicts/{name}/layer-{wc.layer}/{f}")
        for f in ("weights.safetensors", "cfg.json")
    ]


def pairwise_files(wildcards):
    return [f for m in CHECKPOINTS for f in dict_files(f"cc-{m}")(wildcards)]


def pairwise_dirs(wildcards):
    return {m: res(f"dicts/cc-{m}/layer-{wildcards.layer}") for m in CHECKPOINTS}


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
    threads: config["threads"]
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
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dir=lambda wc: res(f"dicts/cc3/layer-{wc.layer}"),
        shards=model_shards(DICTS["cc3"]),
        dictionaries=SCALING_ROWS,
        drift=pick(DRIFT, "norm", "mas", "latent_scaling"),
    script:
        "../scripts/drift_mas.py"


rule drift_preservation_model:
    input:
        sae=dict_files("sae-base"),
        shards=lambda wc: act_shards(wc.model, wc.layer),
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
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dict_dir=lambda wc: res(f"dicts/sae-base/layer-{wc.layer}"),
        holdout_every=config["dictionaries"]["holdout_every"],
        max_tokens=config["dictionaries"]["eval_tokens"],
        ce_sequences=config["dictionaries"]["ce_sequences"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/drift_preservation_model.py"


rule drift_preservation:
    input:
        features=lambda wc: expand(
            res("drift/layer-{layer}/preservation/{model}.parquet"),
            layer=wc.layer,
            model=MODELS,
        ),
        metrics=lambda wc: expand(
            res("drift/layer-{layer}/preservation/{model}.json"),
            layer=wc.layer,
            model=MODELS,
        ),
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


rule drift_claims:
    input:
        nrn=drift_dir("nrn_summary.parquet"),
        stabilization=drift_dir("stabilization_summary.parquet"),
        mas=drift_dir("mas_owners.parquet"),
        preservation=drift_dir("preservation.parquet"),
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
        drift=DRIFT,
    script:
        "../scripts/drift_claims.py"
