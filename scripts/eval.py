from featdrift.evaluation.run import evaluate_model
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    p = snakemake.params
    acc = evaluate_model(snakemake.wildcards.model, snakemake.input.model, p.tasks, p.include_path, p.eval, p.seed,
                         snakemake.threads, snakemake.output, p.trust_remote_code)
    print("accuracy:", acc)
    record(snakemake, seed=p.seed, extra={"accuracy": acc})
