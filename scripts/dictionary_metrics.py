from featdrift.dictionaries.build import measure_dictionary
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    n = len(i.shards) // len(p.models)
    shards = [i.shards[m * n : (m + 1) * n] for m in range(len(p.models))]
    metrics = measure_dictionary(p.dict_dir, p.models, shards, list(i.models), i.probe, int(snakemake.wildcards.layer),
                                 p.dictionaries, snakemake.threads, snakemake.output.metrics, p.trust_remote_code)
    record(snakemake, extra={"fvu": metrics["fvu"], "l0": metrics["l0"], "dead_frac": metrics["dead_frac"]})
