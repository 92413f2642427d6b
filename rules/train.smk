# SFT and RL (GRPO) from the same base on the same prompts in the same order.
# Every checkpoint is a declared output; resumable state lives in results/.resume/{run}/
# (not an output, so Snakemake keeps it when a job fails; see featdrift.training.checkpoints).

TRAIN = config["train"]


def train_params(run):
    """The settings both runs share, and this run's own section (not the other run's, nor resources)."""
    other = {"sft": "rl", "rl": "sft"}[run]
    return {k: v for k, v in TRAIN.items() if k not in (other, "threads", "resources")}


def train_outputs(run):
    return dict(
        models=[directory(res(f"models/{run}/step-{s}")) for s in STEPS],
        curves=res(f"train/{run}/curves.parquet"),
        plot=report(
            res(f"train/{run}/curves.png"),
            caption="../report/train_curves.rst",
            category="Training",
        ),
        lineage=res(f"train/{run}/lineage.json"),
    )


rule sft:
    input:
        model=res("models/base"),
        train=res(f"data/{IN_DOMAIN}/train.parquet"),
    output:
        **train_outputs("sft"),
    log:
        logfile("train/sft"),
    benchmark:
        benchfile("train/sft")
    conda:
        "../envs/featdrift.yaml"
    threads: TRAIN["threads"] or config["threads"]
    resources:
        mem_mb=TRAIN["resources"]["mem_mb"],
        runtime=TRAIN["resources"]["runtime"],
        gpu=TRAIN["resources"]["gpus"],
    params:
        train=train_params("sft"),
        steps=STEPS,
        seed=config["seed"],
        resume_dir=res(".resume/sft"),
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/sft.py"


rule rl:
    input:
        model=res("models/base"),
        train=res(f"data/{IN_DOMAIN}/train.parquet"),
    output:
        **train_outputs("rl"),
    log:
        logfile("train/rl"),
    benchmark:
        benchfile("train/rl")
    conda:
        "../envs/featdrift.yaml"
    threads: TRAIN["threads"] or config["threads"]
    resources:
        mem_mb=TRAIN["resources"]["mem_mb"],
        runtime=TRAIN["resources"]["runtime"],
        gpu=TRAIN["resources"]["gpus"],
    params:
        train=train_params("rl"),
        steps=STEPS,
        seed=config["seed"],
        resume_dir=res(".resume/rl"),
        trust_remote_code=config["base"]["trust_remote_code"],
        answer_regex=DATA["dataset"]["answer_regex"] if DATA["dataset"] else None,
    script:
        "../scripts/rl.py"
