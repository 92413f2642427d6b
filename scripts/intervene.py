from types import SimpleNamespace

from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.mediation.stage import intervene_job

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    inp = SimpleNamespace(selection=i.selection, critical=i.critical, scores=i.scores, model=i.model,
                          dictionary=p.dictionary)
    summary = intervene_job(snakemake.wildcards.mode, inp, p.dict_model, p.tasks, p.include_path, p.eval,
                            p.intervene, p.seed, snakemake.threads, snakemake.output, p.trust_remote_code)
    print("interventions:", summary)
    record(snakemake, seed=p.seed, extra=summary)
