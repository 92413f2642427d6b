# results/report/summary.md: headline numbers and plots of the whole run on one page.

# Where configs/calibration.yaml writes its recovery table (its results root is results/calibration).
CALIBRATION_REPORT = res("calibration/recovery.md")


rule summary:
    input:
        accuracy=res("eval/accuracy.md"),
        accuracy_plots=[
            res("eval/accuracy_over_steps.png"),
            res("eval/accuracy_per_task.png"),
        ],
        claims=expand(res("drift/layer-{layer}/claims.md"), layer=LAYERS),
        drift_plots=expand(
            res("drift/layer-{layer}/{plot}.png"),
            layer=LAYERS,
            plot=["nrn_hist", "stabilization", "preservation"],
        ),
        selection=res("mediation/selection.json"),
        selection_plot=res("mediation/selection.png"),
        effects=res("interventions/effects.md"),
        effects_plot=res("interventions/effects.png"),
        # the calibration run's scores, once it has written them (beside the claims on the page)
        calibration=lambda wc: [p for p in [CALIBRATION_REPORT] if Path(p).exists()],
    output:
        summary=res("report/summary.md"),
    log:
        logfile("report/summary"),
    benchmark:
        benchfile("report/summary")
    conda:
        "../envs/featdrift.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        cfg={
            "seed": config["seed"],
            "steps": STEPS,
            "n_checkpoints": len(STEPS),
            "layers": LAYERS,
        },
    script:
        "../scripts/summary.py"
