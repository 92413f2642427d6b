from featdrift.analysis.stage import nrn_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    info = nrn_job(p.dict_dirs, p.shards, p.dictionaries, p.drift, snakemake.threads, snakemake.output)
    record(snakemake, extra=info)
