from featdrift.analysis.stage import claims_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    i = snakemake.input
    per_seed = {s: {k: i[k][n] for k in ("nrn", "stabilization", "mas", "preservation")}
                for n, s in enumerate(snakemake.params.seeds)}
    verdicts = claims_job(per_seed, snakemake.params.drift, snakemake.output)
    print("claims:", verdicts)
    record(snakemake, extra={"verdicts": verdicts})
