from featdrift.activations.probe import build_probe, write_probe
from featdrift.jobs import job
from featdrift.lineage import record
from featdrift.models.load import load_model_tokenizer

with job(snakemake):
    p = snakemake.params
    tok = load_model_tokenizer(snakemake.input.model, trust_remote_code=p.trust_remote_code)
    table, meta = build_probe(dict(zip(p.tasks, snakemake.input.tasks)), tok, p.probe, p.seed)
    write_probe(snakemake.output.probe, table, meta)
    record(snakemake, seed=p.seed, extra=meta)
