# Planted ground truth (docs/design.md "Calibration"): the sft and rl checkpoints are the base
# with known features written at the dictionaries' layer instead of trained models, and the
# drift stage, run unchanged on them, is scored against what was planted.

CAL = config["calibration"]
CAL_LAYER = LAYERS[0]
# The planted causal feature (calibration.causal): scored through the selection and interventions.
CAUSAL = CAL["causal"]


def calibration(path):
    """The calibration's own files, at the top of its results root (results/calibration/)."""
    return res(path)


rule plant:
    input:
        model=BASE_SOURCE,
        probe=res("probe/probe.parquet"),
        causal=res(f"data/{CAUSAL['task']}/train.parquet") if CAUSAL else [],
    output:
        base=directory(model_dir("base")),
        sft=[directory(model_dir(f"sft-{s}")) for s in STEPS],
        rl=[directory(model_dir(f"rl-{s}")) for s in STEPS],
        truth=calibration("planted.json"),
        directions=calibration("planted.safetensors"),
        lineage=calibration("planted.lineage.json"),
    log:
        logfile("calibration/plant"),
    benchmark:
        benchfile("calibration/plant")
    conda:
        "../envs/featdrift.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        # causal only when set: a run without it keeps the params (and outputs) it had
        calibration={
            k: v
            for k, v in CAL.items()
            if k not in ("base", "match_cos") and (k != "causal" or v)
        },
        layer=CAL_LAYER,
        steps=STEPS,
        seed=config["seed"],
    script:
        "../scripts/plant.py"


rule calibration_recovery:
    input:
        truth=calibration("planted.json"),
        directions=calibration("planted.safetensors"),
        nrn=res(f"drift/layer-{CAL_LAYER}/nrn.parquet"),
        stabilization=res(f"drift/layer-{CAL_LAYER}/stabilization_summary.parquet"),
        mas=res(f"drift/layer-{CAL_LAYER}/mas.parquet"),
        preservation=res(f"drift/layer-{CAL_LAYER}/preservation_features.parquet"),
        claims=res(f"drift/layer-{CAL_LAYER}/claims.parquet"),
        dicts=[
            res(f"dicts/{name}/layer-{CAL_LAYER}/{f}")
            for name in DICTS
            for f in ("weights.safetensors", "cfg.json")
        ],
        causal=(
            [mediation("selection.json"), interventions("effects.parquet")]
            if CAUSAL
            else []
        ),
    output:
        json=calibration("recovery.json"),
        markdown=report(
            calibration("recovery.md"),
            caption="../report/calibration_recovery.rst",
            category="Calibration",
        ),
        lineage=calibration("recovery.lineage.json"),
    log:
        logfile("calibration/recovery"),
    benchmark:
        benchfile("calibration/recovery")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        pairwise_dirs={
            m: res(f"dicts/cc-{m}/layer-{CAL_LAYER}") for m in MODELS if m != "base"
        },
        cc3_dir=res(f"dicts/cc3/layer-{CAL_LAYER}"),
        sae_dir=res(f"dicts/sae-base/layer-{CAL_LAYER}"),
        drift=pick(DRIFT, "nrn", "mas", "stabilization"),
        match_cos=CAL["match_cos"],
        select_dir=SELECT_DICT_DIR if CAUSAL else None,
    script:
        "../scripts/calibration_recovery.py"


calibration_targets = [calibration("recovery.md"), calibration("recovery.lineage.json")]


# `snakemake calibration --configfile configs/calibration.yaml`
rule calibration:
    input:
        calibration_targets,
