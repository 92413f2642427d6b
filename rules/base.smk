# The base model: an existing causal LM imported, or a tiny one (Llama or Qwen family) pretrained here.


def base_params():
    """What the base job reads: the model to import, or the shape and loop to pretrain (the corpus
    settings are the corpus rule's, whose output is this job's input)."""
    base = config["base"]
    out = pick(base, "pretrained", "trust_remote_code")
    if "pretrain" in base:
        out["pretrain"] = pick(
            base["pretrain"], "model", "train", "tokenizer", "bpe_vocab"
        )
    return out


rule base:
    input:
        corpus=(
            [] if config["base"]["pretrained"] else res("data/corpus/pretrain.parquet")
        ),
    output:
        model=directory(BASE_BUILT),
        lineage=f"{BASE_BUILT}.lineage.json",
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
        base=base_params(),
        seed=config["seed"],
    script:
        "../scripts/base.py"
