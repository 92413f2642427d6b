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
    threads: config["eval"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        tasks=EVAL_TASKS,
        include_path=None if BUILTIN else res("data/tasks"),
        eval=EVAL_RUN,
        seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/eval.py"


# The model x task accuracy table of base and every checkpoint, and its plots over training steps.
rule eval_table:
    input:
        summaries=expand(res("eval/{model}/summary.json"), model=MODELS),
    output:
        table=res("eval/accuracy.parquet"),
        markdown=report(
            res("eval/accuracy.md"),
            caption="../report/eval_table.rst",
            category="Evaluation",
        ),
        roles_plot=report(
            res("eval/accuracy_over_steps.png"),
            caption="../report/eval_over_steps.rst",
            category="Evaluation",
        ),
        tasks_plot=report(
            res("eval/accuracy_per_task.png"),
            caption="../report/eval_per_task.rst",
            category="Evaluation",
        ),
        lineage=res("eval/accuracy.lineage.json"),
    log:
        logfile("eval/table"),
    benchmark:
        benchfile("eval/table")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        models=MODELS,
    script:
        "../scripts/eval_table.py"
