from featdrift.dictionaries.build import build_dictionary, training_source
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p, i, layer = snakemake.params, snakemake.input, int(snakemake.wildcards.layer)
    source = training_source(p.models, layer, list(i.get("shards", [])), list(i.models), p.online,
                             p.dictionaries["tokens"], p.corpus_seed, p.trust_remote_code)
    last = build_dictionary(p.name, p.models, source, layer, p.dictionaries, p.seed, snakemake.threads, p.out_dir,
                            p.saelens, p.context_size, p.device)
    record(snakemake, seed=p.seed, extra={"final_step": last})
