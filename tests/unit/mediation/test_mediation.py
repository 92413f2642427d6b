"""Issue 6: selection math, random controls, bootstrap intervals, and the stage end to end on the tiny config."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import snakemake
from featdrift.mediation.effects import bootstrap_ci, effects_table
from featdrift.mediation.intervene import conditions, random_sets
from featdrift.mediation.select import jaccard, task_scores


def test_scores_and_rho_threshold_by_hand():
    rl = torch.tensor([[1.0, 0.5, 0.0, 0.2], [3.0, 0.5, 0.0, 0.2]])
    base = torch.tensor([[0.0, 0.0, 1.0, 0.1], [0.0, 0.5, 1.0, 0.1]])
    score, sel = task_scores(rl, base, rho=0.2)
    np.testing.assert_allclose(score, [2.0, 0.25, -1.0, 0.1])
    assert sel.tolist() == [True, False, False, False]  # 0.25 < 0.2 * 2.0
    _, sel = task_scores(rl, base, rho=0.1)
    assert sel.tolist() == [True, True, False, False]
    _, none = task_scores(base, rl, rho=0.2)  # base above RL on every feature except one
    assert none.sum() == 1
    _, empty = task_scores(torch.zeros(2, 3), torch.ones(2, 3), rho=0.2)
    assert not empty.any()  # no positive score: nothing selected
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3) and np.isnan(jaccard(set(), set()))


def test_random_sets_exclude_the_selection_and_are_seeded():
    sets = random_sets([1, 2, 3], pool=list(range(20)), n_draws=5, seed=0)
    assert len(sets) == 5 and all(len(s) == 3 and not {1, 2, 3} & set(s) for s in sets)
    assert len({tuple(s) for s in sets}) > 1
    assert sets == random_sets([1, 2, 3], pool=list(range(20)), n_draws=5, seed=0)
    conds = conditions("amplify", [1, 2, 3], sets, [2.0, 4.0])
    assert [c["set"] for c in conds].count("random") == 10 and conds[0] == {
        "set": "none", "draw": -1, "scale": 1.0, "features": []}
    assert {c["scale"] for c in conditions("disable", [1], sets, [2.0])} == {1.0, 0.0}


def test_bootstrap_interval_is_degenerate_for_a_constant_and_covers_the_mean():
    rng = np.random.default_rng(0)
    assert bootstrap_ci(np.full(50, 0.25), 500, 0.95, rng) == (0.25, 0.25)
    d = rng.choice([-1.0, 0.0, 1.0], size=400, p=[0.2, 0.5, 0.3])
    lo, hi = bootstrap_ci(d, 2000, 0.95, rng)
    assert lo < d.mean() < hi and hi - lo < 0.2


def test_effects_pair_items_and_average_random_draws():
    tasks = {"a": {"role": "ood"}, "h": {"role": "heldout"}}
    rows = []
    for set_, draw, scale, correct_a in (("none", -1, 1.0, [1, 1, 0, 0]), ("selected", -1, 0.0, [0, 0, 0, 0]),
                                         ("random", 0, 0.0, [1, 1, 0, 1]), ("random", 1, 0.0, [1, 0, 0, 0])):
        rows += [{"set": set_, "draw": draw, "scale": scale, "n_features": 2, "task": "a", "doc_id": i,
                  "correct": bool(c)} for i, c in enumerate(correct_a)]
        rows += [{"set": set_, "draw": draw, "scale": scale, "n_features": 2, "task": "h", "doc_id": 0,
                  "correct": True}]
    critical = pd.DataFrame({"task": ["a", "a"], "doc_id": [0, 1]})
    eff = effects_table(pd.DataFrame(rows), tasks, critical, ["ood", "heldout"], "disable", 200, 0.95, 0)
    get = lambda **kw: eff.loc[np.logical_and.reduce([eff[k] == v for k, v in kw.items()])].iloc[0]  # noqa: E731
    assert get(set="selected", subset="full", task="a")["diff"] == -0.5
    assert get(set="selected", subset="critical", task="a")["diff"] == -1.0
    assert get(set="random", subset="full", task="a")["diff"] == pytest.approx((0.25 - 0.25) / 2)
    assert get(set="random-1", subset="critical", task="all critical")["diff"] == -0.5
    assert get(set="selected", subset="full", task="all heldout")["diff"] == 0.0
    assert get(set="selected", subset="critical", task="a")["acc_unedited"] == 1.0


@pytest.mark.slow
def test_select_and_intervene_on_the_tiny_config(tiny_run):
    snakemake(tiny_run, "results/report/summary.md",
              config={"select": {"min_tasks": 1}, "intervene": {"alphas": [4.0], "n_random": 2, "bootstrap": 200}})
    r = tiny_run / "results"
    sel = json.loads((r / "mediation/selection.json").read_text())
    scores = pd.read_parquet(r / "mediation/scores.parquet")
    counts = scores.groupby("feature")["selected"].sum()
    assert sorted(sel["compact_set"]) == sorted(counts[counts >= sel["min_tasks"]].index.tolist())
    crit = pd.read_parquet(r / "mediation/critical.parquet")
    base = pd.read_parquet(r / "eval/base/samples.parquet").set_index(["task", "doc_id"])
    assert not base.loc[list(zip(crit["task"], crit["doc_id"])), "correct"].any()  # base wrong on every critical item
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


@pytest.mark.slow
def test_html_report_has_a_caption_for_every_plot_and_table(tiny_run):
    snakemake(tiny_run, "--report", "report.html",
              config={"select": {"min_tasks": 1}, "intervene": {"alphas": [4.0], "n_random": 2, "bootstrap": 200}})
    html = (tiny_run / "report.html").read_text()
    for caption in ("SFT (orange) against RL (green)", "Selection of the generalization features",
                    "random feature sets of the same size", "three claims", "Accuracy of every model"):
        assert caption in html, caption
