from featdrift.analysis.stage import mas_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    owners = mas_job(p.dict_dir, p.drift, snakemake.output)
    record(snakemake, extra={"owners": owners})
