from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.tasks.build import build_task

with job(snakemake):
    counts = build_task(snakemake.wildcards.task, snakemake.params.data, snakemake.params.seed, snakemake.output)
    record(snakemake, seed=snakemake.params.seed, extra={"rows": counts})
