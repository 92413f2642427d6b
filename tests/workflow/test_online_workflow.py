"""An online dictionary's job reads its models and corpus, not activation shards (dry run).

That an online source trains the same dictionary as the store is tests/unit/dictionaries/test_online.py."""

from __future__ import annotations

from helpers import snakemake

ONLINE = {"dictionaries": {"source": "online", "online": {
    "corpus": [{"path": "results/probe/probe.parquet", "column": "token_ids"}], "seq_len": 40, "batch_size": 8}}}


def test_online_dictionary_needs_no_activation_shards(tmp_path):
    out = snakemake(tmp_path, "-n", "results/dicts/cc3/layer-1/weights.safetensors", config=ONLINE).stdout
    jobs = {line.split()[0] for line in out.split("Job stats:")[1].splitlines()[3:] if line.split()}
    assert {"probe", "crosscoder", "sft", "rl"} <= jobs and "activations" not in jobs, out[-2000:]
    # the corpus file the workflow builds is the job's input, so it waits for it
    assert "input: results/models/base, results/models/sft/step-" in out and "results/probe/probe.parquet" in out


def test_online_without_a_corpus_stops_before_any_job(tmp_path):
    proc = snakemake(tmp_path, "-n", config={"dictionaries": {"source": "online"}}, check=False)
    assert proc.returncode != 0
    assert "dictionaries.online.corpus: empty, but dictionaries.source is online" in proc.stdout + proc.stderr
