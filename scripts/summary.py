from featdrift.jobs import job
from featdrift.report import write_summary

with job(snakemake):
    i = snakemake.input
    inp = {k: (list(v) if k in ("accuracy_plots", "claims", "drift_plots", "calibration") else str(v)) for k, v in i.items()}
    write_summary(inp, snakemake.params.cfg, snakemake.output.summary)
    print("summary:", snakemake.output.summary)
