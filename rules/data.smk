# Task data: Parquet splits, lm-eval task files, and the pretraining corpus.


rule task_data:
    output:
        train=res("data/{task}/train.parquet"),
        test=res("data/{task}/test.parquet"),
        lineage=res("data/{task}/lineage.json"),
    log:
        logfile("data/{task}"),
    benchmark:
        benchfile("data/{task}")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data=lambda wc: {
            "n_train": DATA["n_train"],
            "n_test": DATA["test_sizes"].get(wc.task, DATA["n_test"]),
            "params": {wc.task: DATA["params"].get(wc.task, {})},
            "source": DATA["source"] if wc.task == IN_DOMAIN else "synthetic",
            "dataset": DATA["dataset"] if wc.task == IN_DOMAIN else None,
        },
        seed=config["seed"],
    script:
        "../scripts/task_data.py"


rule task_yaml:
    input:
        test=res("data/{task}/test.parquet"),
    output:
        yaml=res("data/tasks/{task}.yaml"),
        lineage=res("data/tasks/{task}.lineage.json"),
    log:
        logfile("data/yaml-{task}"),
    benchmark:
        benchfile("data/yaml-{task}")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        max_gen_toks=config["eval"]["max_gen_toks"],
        answer_regex=lambda wc: (
            DATA["dataset"]["answer_regex"]
            if DATA["dataset"] and wc.task == IN_DOMAIN
            else None
        ),
    script:
        "../scripts/task_yaml.py"


rule corpus:
    input:
        train=res(f"data/{IN_DOMAIN}/train.parquet"),
        test=res(f"data/{IN_DOMAIN}/test.parquet"),
    output:
        corpus=res("data/corpus/pretrain.parquet"),
        lineage=res("data/corpus/lineage.json"),
    log:
        logfile("data/corpus"),
    benchmark:
        benchfile("data/corpus")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        corpus=config["base"].get("pretrain", {}).get("corpus"),
        task_params=DATA["params"],
        seed=config["seed"],
    script:
        "../scripts/corpus.py"
