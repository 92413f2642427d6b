from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.models.base import build_base

with job(snakemake):
    p = snakemake.params
    corpus = snakemake.input.corpus or None
    summary = build_base(p.base, corpus, p.seed, snakemake.threads, snakemake.output.model)
    record(snakemake, seed=p.seed, extra=summary)
