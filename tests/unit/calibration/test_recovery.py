"""calibration.recovery on hand-built decoders whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from featdrift.calibration import recovery as R

D = 8


def _eye(*rows):
    out = torch.zeros(3, D, dtype=torch.float64)
    for j, r in enumerate(rows):
        if r is not None:
            out[j, r] = 1.0
    return out


# feature 0: base, kept; feature 1: base, removed in "sft-1"; feature 2: added by "sft-1"
PLANTED = {"base": _eye(0, 1, None), "sft-1": _eye(0, None, 2)}


def _decoder():
    """A crosscoder (base, sft-1) with one latent per feature as planted, plus two unplanted latents."""
    w = torch.zeros(2, 5, D, dtype=torch.float64)
    w[0, 0, 0] = w[1, 0, 0] = 1.0  # shared feature 0
    w[0, 1, 1] = 1.0  # base-only feature 1
    w[1, 2, 2] = 1.0  # tuned-only feature 2
    w[0, 3, 5] = w[1, 3, 5] = 1.0  # unplanted, shared
    w[1, 4, 6] = 1.0  # unplanted, tuned-only: a false positive
    return w


def test_belonging_uses_the_model_where_a_feature_writes():
    bel = R.belonging(_decoder(), ["base", "sft-1"], PLANTED, 0.9)
    assert bel.shape == (5, 3)
    assert bel[0, 0] and bel[1, 1] and bel[2, 2]
    assert not bel[3:].any()


def test_nrn_recovery_scores_recall_and_false_positives():
    nrn = pd.DataFrame({"model": "sft-1", "feature": range(5),
                        "class": ["shared", "base_specific", "tuned_specific", "shared", "tuned_specific"], "nrn": [0.5, 0.0, 1.0, 0.5, 1.0]})
    feats, fps, _ = R.nrn_recovery(nrn, {"sft-1": (_decoder(), ["base", "sft-1"])}, PLANTED, [1.0, 1.0, 1.0], 0.9)
    assert feats.set_index("feature")["expected"].to_dict() == {0: "shared", 1: "base_specific", 2: "tuned_specific"}
    assert feats["recovered"].all()
    assert fps.loc[0, "n_unplanted"] == 2 and fps.loc[0, "n_tuned_specific"] == 1
    # a tuned-only feature the instrument calls shared is not recovered
    nrn.loc[2, "class"] = "shared"
    feats, _, _ = R.nrn_recovery(nrn, {"sft-1": (_decoder(), ["base", "sft-1"])}, PLANTED, [1.0, 1.0, 1.0], 0.9)
    assert not feats.set_index("feature").loc[2, "recovered"]


def test_true_stabilization_follows_the_planted_directions():
    base = torch.zeros(1, D, dtype=torch.float64)
    held = torch.zeros(1, D, dtype=torch.float64)
    held[0, 0] = 1.0
    moving = [torch.zeros(1, D, dtype=torch.float64) for _ in range(3)]
    for i, m in enumerate(moving):
        m[0, i] = 1.0  # a new direction every checkpoint
    planted = {"base": base, **{f"sft-{s}": held for s in (1, 2, 3)},
               **{f"rl-{s}": m for s, m in zip((1, 2, 3), moving)}}
    out = R.true_stabilization(planted, {"sft": [1, 2, 3], "rl": [1, 2, 3]}, 0.7, 0.8)
    assert out["sft"]["stable_step"] == 1 and out["rl"]["stable_step"] == 3
    claims = R.planted_claims([{"kind": "sft"}] * 2 + [{"kind": "rl"}] + [{"kind": "base", "removed_at_step": 2}], out)
    assert claims == {"more_tuned_specific": "yes", "earlier_stabilization": "yes", "base_preservation": "yes"}


def test_preservation_recovery_finds_removed_features_and_kept_ones_that_changed():
    w_sae = torch.zeros(1, 3, D, dtype=torch.float64)
    w_sae[0, 0, 0] = w_sae[0, 1, 1] = w_sae[0, 2, 7] = 1.0  # latents of features 0, 1 and one unplanted
    pres = pd.DataFrame({"model": "sft-1", "run": "sft", "feature": [0, 1, 2], "base_freq": [0.1, 0.1, 0.1],
                         "died": [False, False, False], "born": [False, False, True],
                         "weakened": [False, True, False], "strengthened": [False, False, False]})
    out = R.preservation_recovery(pres, w_sae, PLANTED, 0.9).iloc[0]
    assert out["n_removed"] == 1 and out["n_died_found"] == 0 and out["n_weakened_found"] == 1
    assert out["n_removed_resolved"] == 1 and out["n_kept_died"] == 0 and out["n_kept_weakened"] == 0
    assert out["unplanted"] == 1 and out["unplanted_born"] == 1 and out["unplanted_weakened"] == 0
    assert np.isclose(out["unplanted_born"] / out["unplanted"], 1.0)
    # feature 0 is still written by sft-1: its latent weakening there is off schedule
    pres.loc[0, "weakened"] = True
    assert R.preservation_recovery(pres, w_sae, PLANTED, 0.9).iloc[0]["n_kept_weakened"] == 1
    # a removed feature without a latent at match_cos is not resolved, so it cannot be found
    w_sae[0, 1, 1], w_sae[0, 1, 2] = 0.6, 0.8
    assert R.preservation_recovery(pres, w_sae, PLANTED, 0.9).iloc[0]["n_removed_resolved"] == 0


def _effects(disable, amplify, random_diff=0.0):
    rows = []
    for mode, scale, (diff, lo, hi) in (("disable", 0.0, disable), ("amplify", 2.0, amplify)):
        rows.append({"mode": mode, "scale": scale, "set": "selected", "task": "all critical", "n": 40, "diff": diff,
                     "ci_low": lo, "ci_high": hi})
        rows.append({"mode": mode, "scale": scale, "set": "random", "task": "all critical", "n": 40,
                     "diff": random_diff, "ci_low": random_diff - 0.05, "ci_high": random_diff + 0.05})
    return pd.DataFrame(rows)


def test_causal_recovery_needs_the_feature_selected_and_both_edits_beyond_the_random_sets():
    w = _decoder()
    sel = {"compact_set": [2, 4], "tasks": {"cue": {"n_critical": 40}}}
    ok = R.causal_recovery(sel, _effects((-0.5, -0.7, -0.3), (0.4, 0.2, 0.6)), w, ["base", "sft-1"], PLANTED, 2, 2.0, 0.9)
    assert ok["selected"] and ok["in_compact"] == [2] and ok["pass"] and ok["n_critical"] == 40
    # an interval that holds the random sets' mean fails, though it excludes 0
    near = R.causal_recovery(sel, _effects((-0.5, -0.7, -0.3), (0.4, 0.2, 0.6), random_diff=0.25), w,
                             ["base", "sft-1"], PLANTED, 2, 2.0, 0.9)
    assert near["disable"]["pass"] and not near["amplify"]["pass"] and not near["pass"]
    # not in the compact set: fails whatever the edits do
    out = R.causal_recovery({**sel, "compact_set": [4]}, _effects((-0.5, -0.7, -0.3), (0.4, 0.2, 0.6)), w,
                            ["base", "sft-1"], PLANTED, 2, 2.0, 0.9)
    assert not out["selected"] and not out["pass"]


def test_a_write_merged_into_a_shared_latent_is_represented_but_not_recalled():
    """The tuned-only feature 2 held by one latent whose base decoder is its context (dim 7) and whose tuned
    decoder adds the write (dim 2): NRN calls it shared, so recall misses it, but its decoder change is the
    planted write (the dictionary holds it). The removed feature's change is its negated base write."""
    w = _decoder()
    w[1, 2, 2] = 0.0
    w[0, 2, 7] = w[1, 2, 7] = 1.0
    w[1, 2, 2] = 0.6
    nrn = pd.DataFrame({"model": "sft-1", "feature": range(5),
                        "class": ["shared", "base_specific", "shared", "shared", "tuned_specific"],
                        "nrn": [0.5, 0.0, 0.6, 0.5, 1.0]})
    feats, _, _ = R.nrn_recovery(nrn, {"sft-1": (w, ["base", "sft-1"])}, PLANTED, [1.0, 1.0, 1.0], 0.9)
    f = feats.set_index("feature")
    assert not f.loc[2, "recovered"] and f.loc[2, "best_cos"] < 0.9
    assert np.isclose(f.loc[2, "change_cos"], 1.0) and np.isclose(f.loc[2, "change_nrn"], 0.6)
    assert np.isclose(f.loc[1, "change_cos"], 1.0)  # removed: the base-only latent's change is -base
