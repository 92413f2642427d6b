# Path helpers and the task and model lists every rule file uses.
from featdrift.tasks.registry import IN_DOMAIN, TASKS
from featdrift.training import schedule

RESULTS = config["results"]
LOGS = config["logs"]
DATA = config["data"]
BUILTIN = config["eval"]["builtin_tasks"]
CALIBRATION = config["calibration"]


def pick(section, *names):
    """The `names` of a config section: params carry only what a job reads, so that
    changing another key (Snakemake's params trigger) reruns nothing that ignores it."""
    return {k: section[k] for k in names if k in section}


def res(path):
    return f"{RESULTS}/{path}"


def logfile(path):
    return f"{LOGS}/{path}.log"


def benchfile(path):
    return f"{LOGS}/benchmarks/{path}.tsv"


# Tasks whose data the workflow generates (the synthetic world, or the in-domain dataset).
DATA_TASKS = [IN_DOMAIN] + DATA["ood_tasks"] + DATA["heldout_tasks"]


def eval_tasks():
    """Our task name -> lm-eval task name and role."""
    if BUILTIN:
        return {
            t: {"lm_eval": t, "role": role}
            for role in ("in_domain", "ood", "heldout")
            for t in BUILTIN.get(role, [])
        }
    roles = {IN_DOMAIN: "in_domain"}
    roles.update({t: "ood" for t in DATA["ood_tasks"]})
    roles.update({t: "heldout" for t in DATA["heldout_tasks"]})
    return {t: {"lm_eval": TASKS[t].lm_eval_name, "role": r} for t, r in roles.items()}


EVAL_TASKS = eval_tasks()
# What an lm-eval call reads (eval and intervene jobs).
EVAL_RUN = pick(
    config["eval"],
    "batch_size",
    "device",
    "limit",
    *(["builtin_max_gen_toks"] if BUILTIN else []),
)


def checkpoint_steps():
    """Optimizer steps at which both runs save a checkpoint, fixed at DAG-build time.

    Both runs take the same prompts in the same order with the same batch size, so
    they share one step grid: every 1/checkpoints_per_epoch of an epoch, last = final.
    """
    tr = config["train"]
    return schedule.checkpoint_steps(
        DATA["n_train"], tr["batch_size"], tr["epochs"], tr["checkpoints_per_epoch"]
    )


STEPS = checkpoint_steps()
RUNS = ["sft", "rl"]
# Every model the analysis stages see: base, then each checkpoint of each run.
MODELS = ["base"] + [f"{run}-{step}" for run in RUNS for step in STEPS]


def model_dir(model):
    """`base` -> models/base; `sft-40` -> models/sft/step-40."""
    if model == "base":
        return res("models/base")
    run, step = model.rsplit("-", 1)
    return res(f"models/{run}/step-{step}")


# What the base rule builds, and the model whose tokenizer makes the probe set: the base itself,
# or in a calibration run the model the planted world starts from (models/base is then planted).
BASE_BUILT = res("models/pretrained") if CALIBRATION else res("models/base")
BASE_SOURCE = (CALIBRATION and CALIBRATION["base"]) or BASE_BUILT


wildcard_constraints:
    task="|".join(DATA_TASKS),
    model=r"base|(sft|rl)-\d+",
