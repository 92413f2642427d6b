# lm-eval on one model (base or a checkpoint) over every configured task.


rule eval:
    input:
        model=lambda wc: model_dir(wc.model),
        yamls=[] if BUILTIN else expand(res("data/tasks/{task}.yaml"), task=DATA_TASKS),
    output:
        per_task=expand(res("eval/{{model}}/{task}.json"), task=list(EVAL_TASKS)),
        samples=res("eval/{model}/samples.parquet"),
        summary=res("eval/{model}/summary.json"),
        plot=report(
            res("eval/{model}/accuracy.png"),
            caption="../report/eval_accuracy.rst",
            category="Evaluation",
        ),
        lineage=res("eval/{model}/lineage.json"),
    log:
        logfile("eval/{model}"),
    benchmark:
        benchfile("eval/{model}")
    conda:
        "../envs/featdrift.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        tasks=EVAL_TASKS,
        include_path=None if BUILTIN else res("data/tasks"),
        eval=config["eval"],
        seed=config["seed"],
    script:
        "../scripts/eval.py"
