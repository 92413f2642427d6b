from featdrift.analysis.stage import claims_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    verdicts = claims_job(snakemake.input, snakemake.params.drift, snakemake.output)
    print("claims:", verdicts)
    record(snakemake, extra={"verdicts": verdicts})
