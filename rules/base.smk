# The base model: an existing causal LM imported, or the tiny Llama pretrained here.


rule base:
    input:
        corpus=(
            [] if config["base"]["pretrained"] else res("data/corpus/pretrain.parquet")
        ),
    output:
        model=directory(res("models/base")),
        lineage=res("models/base.lineage.json"),
    log:
        logfile("models/base"),
    benchmark:
        benchfile("models/base")
    conda:
        "../envs/featdrift.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        base={
            **pick(config["base"], "pretrained", "trust_remote_code"),
            "pretrain": pick(config["base"].get("pretrain") or {}, "model", "train"),
        },
        seed=config["seed"],
    script:
        "../scripts/base.py"
