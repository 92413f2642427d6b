from featdrift.activations.capture import capture_shard
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, wc = snakemake.params, snakemake.wildcards
    outs = dict(zip(p.layers, snakemake.output.shards))
    summary = capture_shard(wc.model, snakemake.input.model, snakemake.input.probe, p.layers, int(wc.shard),
                            p.activations, outs, snakemake.threads, p.trust_remote_code)
    record(snakemake, extra=summary)
