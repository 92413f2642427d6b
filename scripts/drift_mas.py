from featdrift.analysis.stage import mas_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    owners = mas_job(p.dict_dir, p.shards, p.dictionaries, p.drift, snakemake.threads, snakemake.output)
    record(snakemake, extra={"owners": owners})
