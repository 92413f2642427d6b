"""The calibration target at tiny size: planted series through the real activation, dictionary and
drift stages, scored against what was planted (docs/design.md "Calibration")."""

from __future__ import annotations

import json

import pytest
import torch

from featdrift.activations.store import ActivationStore
from featdrift.calibration.stage import NRN_FPR, NRN_RECALL

from helpers import snakemake

# The session's tiny base, planted into; the probe and dictionaries are larger than the tiny
# config's, because 64 latents on 3,000 probe tokens cannot resolve planted directions at d 32.
CAL_CONFIG = {
    "results": "results/calibration",
    "logs": "logs/calibration",
    "calibration": {"base": "results/models/base", "n_base": 2, "n_removed": 1, "n_sft": 4, "n_rl": 1,
                    "strength": [2.0], "causal": {"task": "cue"}},
    # the causal feature's task is the one selection task, and the interventions run on it alone; the
    # other tasks stay in the probe (as held-out tasks), which the cue's repetitive items would otherwise fill
    "data": {"ood_tasks": ["cue"], "heldout_tasks": ["compare", "successor", "parity", "words"], "n_test": 48},
    "intervene": {"alphas": [2.0], "n_random": 3, "bootstrap": 1000, "roles": ["ood"]},
    "probe": {"n_tokens": 20000},
    "activations": {"shards": 1},  # one capture job per model, five fewer jobs
    "dictionaries": {"n_latents": 256, "tokens": 200000, "batch_size": 256},
    # one dictionary seed: the claims over seeds and the seed match are the drift workflow test's
    # (tests/workflow/test_drift_workflow.py); here a replica per dictionary only doubles the training
    "drift": {"seeds": [0]},
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def calibrated(tiny_run):
    snakemake(tiny_run, "calibration", config=CAL_CONFIG, override_name="calibration.yaml")
    root = tiny_run / "results" / "calibration"
    return root, json.loads((root / "recovery.json").read_text())


def test_planted_checkpoints_differ_from_the_base_only_by_the_plant(calibrated):
    root, _ = calibrated
    truth = json.loads((root / "planted.json").read_text())
    from safetensors.torch import load_file

    dirs = load_file(str(root / "planted.safetensors"))
    store = ActivationStore([sorted((root / f"acts/{m}/layer-{truth['layer']}").glob("part-*.parquet"))
                             for m in ("base", "sft-8")])
    x = torch.cat([store.read(u)[2] for u in store.units]).double()
    diff = x[:, 1] - x[:, 0]
    d = (dirs["sft-8"] - dirs["base"]).double()
    span = torch.linalg.qr(d[d.norm(dim=1) > 0].T)[0]
    outside = diff - diff @ span @ span.T
    # float16 storage rounds each row; everything the plant did not write is rounding
    assert outside.norm() / diff.norm() < 0.02


def test_instruments_recover_the_plant(calibrated):
    """With designated shared latents (config.yaml's, e2fea48; a 2-core machine, this CAL_CONFIG with `seed` 0
    to 4): NRN recall 1 at FPR 0.015 / 0.011 / 0.019 / 0.023 / 0.0084, and every row asserted here held on plant
    seeds 0, 1, 3 and 4; on seed 2 SFT stabilization was missed (top-16 overlap 0.625 against the 0.8 bar), so the
    stabilization claim read "mixed". Without them (12790e7, another machine) every row held on all five seeds;
    with single slots seed 1 missed SFT stabilization and the stabilization claim."""
    _, r = calibrated
    n = r["nrn"]
    assert n["tuned_specific_recall"] >= NRN_RECALL and n["fpr_tuned_specific"] <= NRN_FPR, n
    assert n["fpr_tuned_specific_scaled"] <= n["fpr_tuned_specific"]
    assert all(s["recovered"] for s in r["stabilization"].values()), r["stabilization"]
    c = r["claims"]
    assert c["more_tuned_specific"]["recovered"] and c["earlier_stabilization"]["recovered"], c
    # The preservation claim read "yes" on plant seeds 0-3 and "mixed" on 4: its base-SAE FVU row flips with the
    # dictionary seed at this size (d 32, 256 latents: one seed says rl < sft, the other the opposite; docs/design.md
    # "What the base-SAE FVU measures"), so another machine's kernels may flip it: it must never contradict the plant.
    assert c["base_preservation"]["measured"] in ("yes", "mixed"), c
    # Read on each feature's own base contexts, the removed feature dies (and weakens) at the checkpoint that
    # removes it and not before (plant seeds 0-4; seed 4 only since a detector firing on 16 tokens is redrawn).
    assert r["preservation"]["schedule_recovered"] == {"died": True, "weakened": True}, r["preservation"]
    # every planted write stays mostly on its firing tokens (tiny plant seeds 0-4: at most 0.59 / 0.39 / 0.62 /
    # 0.52 / 0.29 of its |write| off them; a single slot's RL-like feature wrote 4.5 times its firing mass there,
    # negatively)
    assert r["plant"]["max_off_mass"] < 1.0, r["plant"]


def test_the_planted_causal_feature_is_selected_and_disabling_it_undoes_rl(calibrated):
    _, r = calibrated
    c = r["causal"]
    assert c["train_accuracy"]["base"] <= 0.05 and c["train_accuracy"]["rl"] >= 0.95, c
    assert c["n_critical"] >= 40, c  # of 48 test items
    assert c["selected"], c
    # disabling the compact set in RL: its interval excludes 0 and the random sets' mean (plant seeds 0-4 with
    # designated shared latents: -1.000, -0.188, -1.000, -0.292, -1.000; without them -1.000, -0.188, -1.000,
    # -1.000, -1.000; with single slots seeds 0-2: -0.188, 0 (not selected), -0.146)
    assert c["disable"]["pass"] and c["disable"]["diff"] < 0, c
    # Amplifying (steering the base by RL's compact set at c = ratio = 2): its interval excludes 0 and the random
    # sets' mean on plant seeds 0-4 with designated shared latents (+0.812, +0.812, +0.854, +1.000, +1.000; random
    # sets +0.000); without them it failed on seed 2 (+0.000: at c = 1 the set answered 0.85 of the items, at c = 2
    # it overshot to 0), with single slots on seeds 0 and 2, and this test asserted only its sign. At default size
    # it passes (docs/design.md "Capped slot pairs", "Designated shared latents").
    assert c["amplify"]["edit"] == "steer" and c["amplify"]["pass"] and c["amplify"]["diff"] > 0, c


def test_recovery_page_says_pass_or_fail_per_instrument(calibrated):
    root, _ = calibrated
    md = (root / "recovery.md").read_text()
    for row in ("| NRN | tuned-specific recall", "| MAS |", "| stabilization |", "| preservation |", "| claims |",
                "| causal |", "NRN operating curve"):
        assert row in md
