"""Issue 6: selection math, random controls, bootstrap intervals (the stage end to end: tests/workflow/test_mediation_workflow.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from featdrift.mediation.effects import bootstrap_ci, effects_table
from featdrift.mediation.intervene import conditions, random_sets, steering_magnitudes
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
        "set": "none", "draw": -1, "scale": 1.0, "features": [], "magnitudes": None}
    assert {c["scale"] for c in conditions("disable", [1], sets, [2.0])} == {1.0, 0.0}
    # steering: every edited condition carries its own features' magnitudes, in its feature order
    mags = steering_magnitudes(pd.DataFrame({"task": ["a"] * 20 + ["b"] * 20, "feature": list(range(20)) * 2,
                                             "fbar_rl": [0.1 * k for k in range(20)] + [0.3 * k for k in range(20)]}))
    assert mags[5] == pytest.approx(1.0)  # mean over the tasks of 0.5 and 1.5
    steer = conditions("amplify", [1, 2, 3], sets, [2.0], mags)
    assert steer[0]["magnitudes"] is None and steer[1]["magnitudes"] == pytest.approx([0.2, 0.4, 0.6])
    assert all(c["magnitudes"] == pytest.approx([0.2 * k for k in c["features"]]) for c in steer[1:])


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



def test_detectable_change_is_the_80_percent_power_effect_and_shrinks_with_n():
    from featdrift.mediation.effects import detectable_change

    rng = np.random.default_rng(0)
    d = rng.choice([-1.0, 0.0, 1.0], size=400, p=[0.1, 0.8, 0.1])
    mde = detectable_change(d, 0.95)
    # (1.96 + 0.84) x sd / sqrt(n), sd ~ sqrt(0.2)
    assert abs(mde - 2.8016 * d.std(ddof=1) / 20) < 1e-3 and 0.05 < mde < 0.07
    assert detectable_change(np.tile(d, 4), 0.95) < mde / 1.9
    assert detectable_change(np.zeros(50), 0.95) == 0.0
    assert np.isnan(detectable_change(np.zeros(1), 0.95))


def test_critical_samples_and_reverse_flips(tmp_path):
    from featdrift.io import write_parquet
    from featdrift.mediation.critical import critical_samples

    #            item:   0      1      2      3     (task a)  0     1 (task b, not a selection task)
    base = pd.DataFrame({"task": ["a"] * 4 + ["b"] * 2, "doc_id": [0, 1, 2, 3, 0, 1], "prompt": list("pqrstu"),
                         "correct": [False, False, True, True, False, True]})
    rl = base[["task", "doc_id"]].assign(correct=[True, False, False, True, True, False])
    write_parquet(tmp_path / "b.parquet", base)
    write_parquet(tmp_path / "r.parquet", rl)
    crit, reverse = critical_samples(tmp_path / "b.parquet", tmp_path / "r.parquet", ["a"])
    assert crit[["task", "doc_id", "prompt"]].values.tolist() == [["a", 0, "p"]] and reverse == {"a": 1}
