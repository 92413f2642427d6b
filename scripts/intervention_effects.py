from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.mediation.stage import effects_job

with job(snakemake):
    effects = effects_job(list(snakemake.input.effects), snakemake.params.confidence, snakemake.output)
    print(effects.to_string())
    record(snakemake)
