# Generalization features (docs/design.md): critical samples, Score_k per out-of-domain task, the
# compact set, then causal tests through the featdrift-steered lm-eval model.

SELECT = config["select"]
INTERVENE = config["intervene"]
SELECT_LAYER = LAYERS[0] if SELECT["layer"] is None else SELECT["layer"]
RL_FINAL = f"rl-{STEPS[-1]}"
SELECT_DICT = "cc3" if SELECT["dictionary"] == "cc3" else f"cc-{RL_FINAL}"
SELECT_DICT_DIR = res(f"dicts/{SELECT_DICT}/layer-{SELECT_LAYER}")
# whose decoder an edit uses: disable edits RL's readout; amplify scales the base's readout, or (steer)
# adds RL's features to the base
EDIT_DICT_MODEL = {
    "disable": RL_FINAL,
    "amplify": RL_FINAL if INTERVENE["amplify"] == "steer" else "base",
}
OOD_TASKS = [t for t, v in EVAL_TASKS.items() if v["role"] == "ood"]
INTERVENE_TASKS = {
    t: v for t, v in EVAL_TASKS.items() if v["role"] in INTERVENE["roles"]
}


def mediation(path):
    return res(f"mediation/{path}")


def interventions(path):
    return res(f"interventions/{path}")


rule select:
    input:
        base_samples=res("eval/base/samples.parquet"),
        rl_samples=res(f"eval/{RL_FINAL}/samples.parquet"),
        dictionary=SELECT_DICT_DIR + "/weights.safetensors",
        dictionary_cfg=SELECT_DICT_DIR + "/cfg.json",
        base_model=model_dir("base"),
        rl_model=model_dir(RL_FINAL),
    output:
        critical=mediation("critical.parquet"),
        scores=mediation("scores.parquet"),
        features=mediation("features.parquet"),
        overlap=mediation("overlap.parquet"),
        summary=mediation("selection.json"),
        plot=report(
            mediation("selection.png"),
            caption="../report/mediation_selection.rst",
            category="Generalization features",
        ),
        lineage=mediation("selection.lineage.json"),
    log:
        logfile("mediation/select"),
    benchmark:
        benchfile("mediation/select")
    # the selection and interventions are the run's longest tail
    priority: 10
    conda:
        "../envs/featdrift.yaml"
    threads: config["eval"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dictionary=SELECT_DICT_DIR,
        models={"base": "base", "rl": RL_FINAL},
        ood_tasks=OOD_TASKS,
        layer=SELECT_LAYER,
        select=pick(SELECT, "rho", "min_tasks", "batch_size"),
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/select.py"


rule intervene:
    input:
        selection=mediation("selection.json"),
        critical=mediation("critical.parquet"),
        scores=mediation("scores.parquet"),
        dictionary=SELECT_DICT_DIR + "/weights.safetensors",
        model=lambda wc: model_dir(RL_FINAL if wc.mode == "disable" else "base"),
        yamls=(
            []
            if BUILTIN
            else expand(res("data/tasks/{task}.yaml"), task=list(INTERVENE_TASKS))
        ),
    output:
        samples=interventions("{mode}/samples.parquet"),
        effects=interventions("{mode}/effects.parquet"),
        sets=interventions("{mode}/sets.json"),
        lineage=interventions("{mode}/lineage.json"),
    log:
        logfile("interventions/{mode}"),
    benchmark:
        benchfile("interventions/{mode}")
    wildcard_constraints:
        mode="disable|amplify",
    # the selection and interventions are the run's longest tail
    priority: 10
    conda:
        "../envs/featdrift.yaml"
    threads: config["eval"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        dictionary=SELECT_DICT_DIR,
        dict_model=lambda wc: EDIT_DICT_MODEL[wc.mode],
        tasks=INTERVENE_TASKS,
        include_path=None if BUILTIN else res("data/tasks"),
        eval=EVAL_RUN,
        intervene=pick(
            INTERVENE,
            "alphas",
            "n_random",
            "roles",
            "bootstrap",
            "confidence",
            "amplify",
        ),
        seed=config["seed"],
        trust_remote_code=config["base"]["trust_remote_code"],
    script:
        "../scripts/intervene.py"


rule intervention_effects:
    input:
        effects=expand(
            interventions("{mode}/effects.parquet"), mode=["disable", "amplify"]
        ),
    output:
        table=interventions("effects.parquet"),
        markdown=report(
            interventions("effects.md"),
            caption="../report/mediation_effects_table.rst",
            category="Generalization features",
        ),
        plot=report(
            interventions("effects.png"),
            caption="../report/mediation_effects.rst",
            category="Generalization features",
        ),
        lineage=interventions("effects.lineage.json"),
    log:
        logfile("interventions/effects"),
    benchmark:
        benchfile("interventions/effects")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        confidence=INTERVENE["confidence"],
    script:
        "../scripts/intervention_effects.py"
