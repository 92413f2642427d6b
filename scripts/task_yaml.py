from featdrift.io import write_yaml
from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.tasks.build import load_split
from featdrift.tasks.lmeval_yaml import task_config

with job(snakemake):
    load_split(snakemake.input.test)  # fails here, naming the file, if it is empty or broken
    p = snakemake.params
    write_yaml(snakemake.output.yaml, task_config(snakemake.wildcards.task, snakemake.input.test, p.max_gen_toks, p.answer_regex))
    record(snakemake)
