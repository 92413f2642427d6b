"""The tiny workflow end to end: data, base model, lm-eval on every task, lineage, and which jobs a change reruns."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from helpers import FULL_CONFIG, merged, snakemake
from featdrift.jobs import logged_cpu
from featdrift.lineage import content_hash


def test_lm_eval_scores_every_generated_task(tiny_run):
    summary = json.loads((tiny_run / "results/eval/base/summary.json").read_text())
    assert set(summary) == {"arithmetic", "compare", "successor", "parity", "words"}
    assert summary["arithmetic"]["role"] == "in_domain" and summary["words"]["role"] == "heldout"
    for task, s in summary.items():
        assert 0.0 <= s["accuracy"] <= 1.0
        per_task = json.loads((tiny_run / f"results/eval/base/{task}.json").read_text())
        assert per_task["n"] == 24 and per_task["lm_eval_task"] == f"fd_{task}"
    samples = pd.read_parquet(tiny_run / "results/eval/base/samples.parquet")
    assert samples.groupby("task").size().to_dict() == {t: 24 for t in summary}
    acc = samples.groupby("task")["correct"].mean()
    for task, s in summary.items():
        assert abs(acc[task] - s["accuracy"]) < 1e-9
    assert (tiny_run / "results/eval/base/accuracy.png").stat().st_size > 1000


def test_base_model_is_safetensors_with_tokenizer(tiny_run):
    base = tiny_run / "results/models/base"
    names = {p.name for p in base.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "pretrain_curve.parquet", "pretrain_curve.png"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    assert not [p for p in base.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_every_output_has_a_lineage_record_with_matching_hashes(tiny_run):
    records = sorted((tiny_run / "results").rglob("*lineage.json"))
    rules = {json.loads(p.read_text())["rule"] for p in records}
    assert {"task_data", "task_yaml", "corpus", "base", "eval"} <= rules  # other tests may build more here
    for p in records:
        rec = json.loads(p.read_text())
        assert {"rule", "wildcards", "params", "inputs", "outputs", "code", "packages", "seed"} <= set(rec)
        assert rec["packages"]["torch"].startswith("2.13.0")
        for path, digest in rec["outputs"].items():
            assert content_hash(tiny_run / path) == digest, path
        for path, digest in rec["inputs"].items():
            assert content_hash(tiny_run / path) == digest, path


def test_logs_and_benchmarks_for_every_job(tiny_run):
    # a calibration run (tests/workflow/test_calibration.py) keeps its own logs root inside: logs/calibration
    main, cal = tiny_run / "logs", tiny_run / "logs/calibration"
    for root in (main, cal):
        if not root.is_dir():
            continue
        logs = {p.relative_to(root).with_suffix("") for p in root.rglob("*.log") if root == cal or cal not in p.parents}
        benches = {p.relative_to(root / "benchmarks").with_suffix("") for p in (root / "benchmarks").rglob("*.tsv")}
        assert logs == benches, root
        # every job's log ends with its own CPU time (featdrift.jobs.cpu_line; the benchmark files' is sampled)
        assert [p for p in logs if logged_cpu(root / p.with_suffix(".log")) is None] == [], root
        if root == main:
            assert len(logs) >= 13  # 5 task_data + 5 task_yaml + corpus + base + eval


def test_training_parameter_change_rebuilds_neither_data_nor_base(tiny_run):
    targets = ["results/models/base.lineage.json", "results/eval/base/summary.json"]
    proc = snakemake(tiny_run, "-n", *targets, config={"train": {"sft": {"lr": 3.0e-4}, "rl": {"lr": 2.0e-6}}})
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout
    proc = snakemake(tiny_run, "-n", *targets, config={"base": {"pretrain": {"train": {"steps": 21}}}})
    out = proc.stdout + proc.stderr
    assert "rule base:" in out and "rule task_data:" not in out and "rule corpus:" not in out


# Jobs that build models, activations or dictionaries: no metrics-only or evaluation-only key may rerun them.
BUILD_RULES = ("task_data", "corpus", "base", "sft", "rl", "probe", "activations", "sae", "crosscoder",
               "dictionary_seed")
# One key at a time, with the rules it must rerun (so that the dry run is not vacuous). Latent scaling
# (drift_nrn, drift_mas) measures on the held-out rows the dictionary metrics use: eval_tokens reruns it.
METRICS_AND_EVAL_KEYS = [
    ({"dictionaries": {"eval_tokens": 1000}},
     ("dictionary_metrics", "drift_nrn", "drift_mas", "drift_nrn_seed", "drift_seed_match")),
    ({"dictionaries": {"ce_sequences": 4}}, "dictionary_metrics"),
    ({"eval": {"batch_size": 16}}, "eval"),
    ({"eval": {"limit": 20}}, "eval"),
    ({"eval": {"max_gen_toks": 64}}, "task_yaml"),
    ({"drift": {"norm": "l1"}}, "drift_nrn"),
    ({"drift": {"nrn": {"tail": 0.8}}}, "drift_nrn"),
    ({"drift": {"nrn": {"bins": 10}}}, "drift_nrn"),
    ({"drift": {"mas": {"exclusive": 0.8}}}, "drift_mas"),
    ({"drift": {"latent_scaling": {"max_ratio": 0.3}}}, ("drift_nrn", "drift_mas")),
    ({"drift": {"stabilization": {"k": 8}}}, "drift_stabilization"),
    ({"drift": {"preservation": {"drop": 0.5}}}, ("drift_preservation", "drift_preservation_seed")),
    ({"drift": {"seed_match_cos": 0.5}}, "drift_seed_match"),
    # Fewer seeds: only the tables over seeds change (more seeds train new dictionaries).
    ({"drift": {"seeds": [0]}}, ("drift_claims", "drift_seed_match")),
    ({"select": {"rho": 0.3}}, "select"),
    ({"select": {"batch_size": 8}}, "select"),
    ({"intervene": {"alphas": [2.0]}}, "intervene"),
    ({"intervene": {"n_random": 1}}, "intervene"),
    ({"intervene": {"bootstrap": 100}}, "intervene"),
    ({"intervene": {"confidence": 0.9}}, "intervene"),
]
# Keys of a section a rule reads part of (pick() in rules/common.smk), with rules they must not rerun.
# Replicas' preservation jobs never run the CE splice (ce_sequences 0).
SCOPED_OUT = {str({"dictionaries": {"ce_sequences": 4}}): ("drift_nrn", "drift_mas", "drift_preservation_model_seed"),
              str({"drift": {"seed_match_cos": 0.5}}): ("drift_claims",),
              str({"drift": {"seeds": [0]}}): ("drift_nrn", "drift_preservation_model", "drift_nrn_seed")}


def _dry_run(workdir, change: dict) -> str:
    proc = snakemake(workdir, "-n", config=merged(FULL_CONFIG, change), override_name=f"scope-{abs(hash(str(change)))}.yaml")
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_metrics_and_evaluation_keys_rerun_no_training_or_dictionary_job(tiny_full):
    assert "Nothing to be done" in _dry_run(tiny_full, {})  # the full build is complete
    with ThreadPoolExecutor(2) as pool:  # dry runs are DAG builds: two at a time on two cores
        outs = list(pool.map(lambda kc: _dry_run(tiny_full, kc[0]), METRICS_AND_EVAL_KEYS))
    for (change, expected), out in zip(METRICS_AND_EVAL_KEYS, outs):
        for rule in (expected,) if isinstance(expected, str) else expected:
            assert f"rule {rule}:" in out, (change, rule, out[-2000:])
        rerun = [r for r in BUILD_RULES + SCOPED_OUT.get(str(change), ()) if f"rule {r}:" in out]
        assert not rerun, (change, rerun)


@pytest.mark.slow
def test_one_run_s_settings_do_not_rerun_the_other_run(tiny_full):
    out = _dry_run(tiny_full, {"train": {"rl": {"lr": 1.0e-3}}})
    assert "rule rl:" in out and "rule sft:" not in out and "rule base:" not in out
    out = _dry_run(tiny_full, {"train": {"sft": {"lr": 1.0e-3}}})
    assert "rule sft:" in out and "rule rl:" not in out
