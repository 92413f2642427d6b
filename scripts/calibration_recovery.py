from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    from featdrift.calibration.stage import recovery_job

    p = snakemake.params
    info = recovery_job(snakemake.input, p.pairwise_dirs, p.cc3_dir, p.sae_dir, p.drift, p.match_cos, snakemake.output,
                        select_dir=p.select_dir)
    record(snakemake, extra=info)
