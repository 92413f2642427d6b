"""The activation store: probe set, capture to Parquet, and streaming readers (see docs/design.md).

Nothing is imported here: the Snakefile imports `activations.budget` at parse time, and
torch (which `store` needs) would add seconds to every `snakemake` call, no-op included.
"""
