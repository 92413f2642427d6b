# results/report/summary.md: headline numbers and plots of the whole run on one page.


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
