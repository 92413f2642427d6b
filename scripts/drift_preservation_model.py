from featdrift.analysis.stage import preservation_model_job
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    metrics = preservation_model_job(p.dict_dir, list(i.shards), i.model, i.probe, p.holdout_every, p.max_tokens,
                                     p.ce_sequences, snakemake.threads, snakemake.output, p.trust_remote_code,
                                     list(i.base_shards))
    record(snakemake, extra=metrics)
