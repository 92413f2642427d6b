from types import SimpleNamespace

from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.mediation.stage import select_job

with job(snakemake):
    p, i = snakemake.params, snakemake.input
    inp = SimpleNamespace(base_samples=i.base_samples, rl_samples=i.rl_samples, dictionary=p.dictionary,
                          base_model=i.base_model, rl_model=i.rl_model)
    summary = select_job(inp, p.models, p.ood_tasks, p.layer, p.select, snakemake.threads, snakemake.output,
                         p.trust_remote_code)
    print("selection:", summary)
    record(snakemake, extra=summary)
