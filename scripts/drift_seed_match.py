from featdrift.analysis.stage import seed_match_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    rates = seed_match_job(p.dict_dirs, p.shards, p.dictionaries, p.drift, snakemake.threads, snakemake.output)
    record(snakemake, extra={"match_rate": rates})
