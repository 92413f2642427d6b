from featdrift.io import write_parquet
from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.tasks.build import load_split
from featdrift.tasks.corpus import build_corpus

with job(snakemake):
    p = snakemake.params
    exclude = set(load_split(snakemake.input.train)["prompt"]) | set(load_split(snakemake.input.test)["prompt"])
    corpus = build_corpus(p.corpus, p.seed, exclude, p.task_params)
    write_parquet(snakemake.output.corpus, corpus, metadata={"featdrift.seed": p.seed})
    record(snakemake, seed=p.seed, extra={"documents": len(corpus), "characters": int(corpus["text"].str.len().sum())})
