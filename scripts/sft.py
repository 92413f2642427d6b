from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.training.run import discard_resume_state, train_run

with job(snakemake):
    p = snakemake.params
    summary = train_run("sft", snakemake.input.model, snakemake.input.train, p.train, p.steps, p.seed,
                        snakemake.threads, p.resume_dir, snakemake.output, trust_remote_code=p.trust_remote_code)
    record(snakemake, seed=p.seed, extra=summary)
    discard_resume_state(p.resume_dir)
