from featdrift.dictionaries.build import measure_dictionary, per_model
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    metrics = measure_dictionary(p.dict_dir, p.models, per_model(list(i.shards), p.models), list(i.models), i.probe,
                                 int(snakemake.wildcards.layer), p.dictionaries, snakemake.threads,
                                 snakemake.output.metrics, p.trust_remote_code)
    record(snakemake, extra={"fvu": metrics["fvu"], "l0": metrics["l0"], "dead_frac": metrics["dead_frac"]})
