from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    from featdrift.calibration.stage import plant_job

    p = snakemake.params
    info = plant_job(snakemake.input.model, snakemake.input.probe, p.layer, p.calibration, p.steps, p.seed,
                     snakemake.threads, snakemake.output,
                     causal_items=snakemake.input.causal or None)
    record(snakemake, seed=p.seed, extra=info)
