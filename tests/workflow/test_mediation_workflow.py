"""Issue 6 end to end: selection and interventions on the session's full tiny build (conftest.tiny_full,
helpers.FULL_CONFIG: one selected task suffices, one alpha, two random sets), its report and the HTML report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers import FULL_CONFIG, snakemake

pytestmark = pytest.mark.slow


def test_select_and_intervene_on_the_tiny_config(tiny_full):
    r = tiny_full / "results"
    sel = json.loads((r / "mediation/selection.json").read_text())
    scores = pd.read_parquet(r / "mediation/scores.parquet")
    counts = scores.groupby("feature")["selected"].sum()
    assert sorted(sel["compact_set"]) == sorted(counts[counts >= sel["min_tasks"]].index.tolist())
    crit = pd.read_parquet(r / "mediation/critical.parquet")
    base = pd.read_parquet(r / "eval/base/samples.parquet").set_index(["task", "doc_id"])
    assert not base.loc[list(zip(crit["task"], crit["doc_id"])), "correct"].any()  # base wrong on every critical item
    rl = pd.read_parquet(r / f"eval/{sel['models']['rl']}/samples.parquet").set_index(["task", "doc_id"])
    flips = base["correct"] & ~rl.loc[base.index, "correct"]
    assert {t: v["n_reverse"] for t, v in sel["tasks"].items()} == {t: int(flips.loc[t].sum()) for t in sel["tasks"]}
    table = pd.read_parquet(r / "eval/accuracy.parquet")
    assert set(table["run"]) == {"base", "sft", "rl"} and table["accuracy"].between(0, 1).all()
    for png in ("eval/accuracy_over_steps.png", "eval/accuracy_per_task.png", "mediation/selection.png",
                "interventions/effects.png"):
        assert (r / png).stat().st_size > 5000, png
    assert sel["compact_set"], "configs/test.yaml should give RL critical samples (base steps, RL format reward)"
    if sel["compact_set"]:
        samples = pd.read_parquet(r / "interventions/disable/samples.parquet")
        rl_final = sel["models"]["rl"]
        plain = pd.read_parquet(r / f"eval/{rl_final}/samples.parquet").set_index(["task", "doc_id"])["correct"]
        none = samples[samples["set"] == "none"].set_index(["task", "doc_id"])["correct"]
        assert none.equals(plain.loc[none.index])  # the steered model unedited scores as the eval stage did
        eff = pd.read_parquet(r / "interventions/effects.parquet")
        assert {"disable", "amplify"} == set(eff["mode"]) and (eff["ci_low"] <= eff["ci_high"]).all()
        assert "disable in RL" in (r / "interventions/effects.md").read_text()

    summary = (r / "report/summary.md").read_text()
    for heading in ("## Accuracy of base and every checkpoint", "## Drift: the three claims",
                    "## Generalization features", "## Interventions"):
        assert heading in summary
    links = [line[line.index("](") + 2 : -1] for line in summary.splitlines() if line.startswith("![")]
    assert len(links) >= 6 and all((r / "report" / link).stat().st_size > 5000 for link in links)


def test_html_report_has_a_caption_for_every_plot_and_table(tiny_full):
    snakemake(tiny_full, "--report", "report.html", config=FULL_CONFIG)
    html = (tiny_full / "report.html").read_text()
    for caption in ("SFT (orange) against RL (green)", "Selection of the generalization features",
                    "random feature sets of the same size", "three claims", "Accuracy of every model"):
        assert caption in html, caption
