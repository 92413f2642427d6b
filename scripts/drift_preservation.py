from featdrift.analysis.stage import preservation_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    info = preservation_job(dict(zip(p.models, zip(i.features, i.metrics))), p.drift, snakemake.output)
    record(snakemake, extra=info)
