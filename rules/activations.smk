# The probe set and every model's residual-stream activations as Parquet shards.

ACTS = config["activations"]
LAYERS = ACTS["layers"]
SHARDS = list(range(ACTS["shards"]))


def act_shards(model, layer):
    return expand(
        res("acts/{model}/layer-{layer}/part-{i}.parquet"),
        model=model,
        layer=layer,
        i=SHARDS,
    )


wildcard_constraints:
    shard=r"\d+",
    layer=r"\d+",


rule probe:
    input:
        model=BASE_SOURCE,
        tasks=expand(res("data/{task}/train.parquet"), task=DATA_TASKS),
    output:
        probe=res("probe/probe.parquet"),
        lineage=res("probe/lineage.json"),
    log:
        logfile("probe"),
    benchmark:
        benchfile("probe")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        tasks=DATA_TASKS,
        probe=config["probe"],
        seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/probe.py"


rule activations:
    input:
        probe=res("probe/probe.parquet"),
        model=lambda wc: model_dir(wc.model),
    output:
        shards=expand(
            res("acts/{{model}}/layer-{layer}/part-{{shard}}.parquet"), layer=LAYERS
        ),
        lineage=res("acts/{model}/part-{shard}.lineage.json"),
    log:
        logfile("acts/{model}/part-{shard}"),
    benchmark:
        benchfile("acts/{model}/part-{shard}")
    conda:
        "../envs/featdrift.yaml"
    threads: config["activations"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        layers=LAYERS,
        activations=pick(ACTS, "shards", "dtype", "batch_size", "device"),
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/activations.py"
