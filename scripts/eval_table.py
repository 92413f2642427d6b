from featdrift.evaluation.table import write_accuracy_table
from featdrift.jobs import job
from featdrift.lineage import record

with job(snakemake):
    table = write_accuracy_table(dict(zip(snakemake.params.models, snakemake.input.summaries)), snakemake.output)
    print(table.to_string())
    record(snakemake)
