from featdrift.analysis.stage import stabilization_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    info = stabilization_job(snakemake.input.nrn, p.dict_dirs, p.drift, snakemake.output)
    record(snakemake, extra=info)
