from featdrift.dictionaries.build import build_dictionary
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    n = len(i.shards) // len(p.models)
    shards = [i.shards[m * n : (m + 1) * n] for m in range(len(p.models))]
    last = build_dictionary(p.name, p.models, shards, int(snakemake.wildcards.layer), p.dictionaries, p.seed,
                            snakemake.threads, p.out_dir, p.saelens, p.context_size)
    record(snakemake, seed=p.seed, extra={"final_step": last})
