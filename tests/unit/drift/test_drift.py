"""Drift metrics on hand-made dictionaries whose answers are known."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from featdrift.analysis import mas, nrn, stage
from featdrift.analysis.claims import claims_markdown, claims_over_seeds, claims_table, seed_spread
from featdrift.analysis.decoders import decoder_norms, read_decoder
from featdrift.analysis.mas import mas_table, owner_counts
from featdrift.analysis.nrn import nrn_features, nrn_summary, nrn_table
from featdrift.analysis.preservation import context_changes, model_stats, preservation_tables
from featdrift.analysis.seed_match import match_rate, seed_match_table
from featdrift.analysis.stabilization import match, overlap, stabilization_summary, stabilization_table
from featdrift.config import ConfigError
from featdrift.dictionaries.model import Dictionary
from featdrift.settings import DriftSettings
from helpers.acts import write_synthetic_shards


def unit_rows(n, d, gen):
    return torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=-1)


# --- NRN -------------------------------------------------------------------------------------------

def test_zero_base_decoder_gives_nrn_one_and_tuned_specific(cfg):
    g = torch.Generator().manual_seed(0)
    w = torch.stack([unit_rows(6, 8, g), unit_rows(6, 8, g)])
    w[0, 2] = 0.0  # feature 2: decoded by the tuned model only
    w[1, 4] = 0.0  # feature 4: decoded by the base model only
    w[:, 5] = 0.0  # feature 5: decoded by neither
    df = nrn_features(w, ["base", "sft-10"], cfg)
    assert df.loc[2, "nrn"] == 1.0 and df.loc[2, "class"] == "tuned_specific"
    assert df.loc[4, "nrn"] == 0.0 and df.loc[4, "class"] == "base_specific"
    assert math.isnan(df.loc[5, "nrn"]) and df.loc[5, "class"] == "dead"
    assert np.allclose(df.loc[[0, 1, 3], "nrn"], 0.5) and set(df.loc[[0, 1, 3], "class"]) == {"shared"}
    # The model order inside the crosscoder does not matter.
    swapped = nrn_features(w.flip(0), ["sft-10", "base"], cfg)
    pd.testing.assert_frame_equal(df, swapped)


def test_l1_norm_is_scaled_by_sqrt_d():
    w = torch.ones(2, 3, 16)
    assert torch.allclose(decoder_norms(w, "l1"), torch.full((2, 3), 4.0))
    assert torch.allclose(decoder_norms(w, "l2"), torch.full((2, 3), 4.0))
    with pytest.raises(ValueError, match="unknown decoder norm"):
        decoder_norms(w, "linf")


def test_summary_counts_classes_and_tail_mass(cfg):
    w = torch.ones(2, 10, 4)
    w[0, :3] = 0.0  # 3 tuned-specific (NRN 1)
    w[0, 3] = 0.05  # NRN = 1 / 1.05 ~ 0.952: tuned-specific, in the tail
    w[1, 9] = 0.0  # 1 base-specific
    table = nrn_table({"sft-10": (w, ["base", "sft-10"]), "rl-10": (torch.ones(2, 10, 4), ["base", "rl-10"])}, cfg)
    nan = np.full((2, 10), np.nan)  # latent scaling found nothing firing: no feature kept
    table = nrn.with_latent_scaling(table, {m: (["base", m], nan, nan) for m in ("sft-10", "rl-10")}, cfg)
    assert not table["truly_specific"].any() and table["nu_error"].isna().all()
    s = nrn_summary(table, cfg).set_index("run")
    assert s.loc["sft", ["n_tuned_specific", "n_base_specific", "n_shared", "n_dead"]].tolist() == [4, 1, 5, 0]
    assert s.loc["sft", "tail_mass"] == pytest.approx(0.4)
    assert s.loc["rl", "n_shared"] == 10 and s.loc["rl", "tail_mass"] == 0.0
    assert s.loc["sft", ["n_tuned_specific_scaled", "n_base_specific_scaled"]].tolist() == [0, 0]


# --- MAS -------------------------------------------------------------------------------------------

def test_mas_of_a_feature_decoded_by_one_model_is_one(cfg):
    g = torch.Generator().manual_seed(1)
    w = torch.stack([unit_rows(5, 8, g) for _ in range(3)])
    w[[0, 2], 1] = 0.0  # feature 1: SFT only
    w[[0, 1], 3] = 0.0  # feature 3: RL only
    w[:, 4] = 0.0  # feature 4: nobody
    models = ["base", "sft-20", "rl-20"]
    df = mas_table(w, models, cfg)
    assert df.loc[1, ["mas_base", "mas_sft", "mas_rl"]].tolist() == [0.0, 1.0, 0.0] and df.loc[1, "owner"] == "sft"
    assert df.loc[3, "mas_rl"] == 1.0 and df.loc[3, "owner"] == "rl"
    assert df.loc[4, "owner"] == "none"
    assert np.allclose(df.loc[[0, 2], ["mas_base", "mas_sft", "mas_rl"]].to_numpy(), 1 / 3)
    assert np.allclose(df[["mas_base", "mas_sft", "mas_rl"]].iloc[:4].sum(axis=1), 1.0)
    assert mas.exclusive_owners(df, models, 0.9).tolist() == [-1, 1, -1, 2, -1]
    df = mas.with_latent_scaling(df, models, np.full((3, 5), np.nan), np.full((3, 5), np.nan), cfg)
    counts = owner_counts(df, models, exclusive=0.9).set_index("owner")
    assert counts.loc["sft", "n_features"] >= 1 and counts.loc["rl", "n_features"] >= 1
    assert counts.loc["none", "n_features"] == 1 and counts["n_features"].sum() == 5
    # Only the single-model features are exclusive; the three-way shared ones are not.
    assert counts["n_exclusive"].to_dict() == {"base": 0, "sft": 1, "rl": 1, "none": 0}
    assert counts["n_exclusive_scaled"].sum() == 0  # latent scaling keeps none that never fired


# --- Stabilization ---------------------------------------------------------------------------------

def test_identical_dictionaries_under_a_permutation_overlap_one():
    g = torch.Generator().manual_seed(2)
    a = unit_rows(50, 32, g)
    perm = torch.randperm(50, generator=g)
    ri, ci, cos = match(a, a[perm], tau=0.7)
    assert len(ri) == 50 and np.allclose(cos, 1.0)
    assert torch.equal(perm[torch.as_tensor(ci)], torch.as_tensor(ri))  # each row found its own copy
    assert overlap(a, a[perm], tau=0.7)[0] == 1.0


def test_independent_random_dictionaries_overlap_near_zero():
    g = torch.Generator().manual_seed(3)
    frac, n, _ = overlap(unit_rows(50, 64, g), unit_rows(50, 64, g), tau=0.7)
    assert frac <= 0.02 and n <= 1


def test_matching_maximizes_the_number_of_pairs_above_tau():
    # cos(a0,b0)=1, cos(a1,b0)=0.75, cos(a0,b1)=0.71, cos(a1,b1)=0.6: the maximum-cosine assignment
    # (a0-b0, a1-b1; sum 1.6) keeps one pair above tau 0.7; the count-first one keeps two.
    a = torch.tensor([[1.0, 0.0, 0.0], [0.75, 0.6614, 0.0]])
    b = torch.tensor([[1.0, 0.0, 0.0], [0.71, 0.1020, 0.6968]])
    ri, ci, cos = match(a, b, tau=0.7)
    assert sorted(zip(ri.tolist(), ci.tolist())) == [(0, 1), (1, 0)]
    assert overlap(a, b, tau=0.7)[:2] == (1.0, 2)


def make_checkpoints(cfg, stable_from: int, n=64, d=32, k=10, seed=4):
    """Per step: a crosscoder whose top-k (by NRN) tuned decoders are a fixed set from `stable_from` on."""
    g = torch.Generator().manual_seed(seed)
    fixed = unit_rows(k, d, g)
    dicts = {}
    for step in (10, 20, 30, 40):
        w = torch.stack([unit_rows(n, d, g), unit_rows(n, d, g)])
        top = fixed if step >= stable_from else unit_rows(k, d, g)
        perm = torch.randperm(n, generator=g)[:k]
        w[1, perm] = top
        w[0, perm] = 0.0  # tuned-specific
        dicts[f"sft-{step}"] = (w, ["base", f"sft-{step}"])
    return dicts


def test_stabilization_table_and_step(cfg):
    cfg["stabilization"]["k"] = 10
    dicts = make_checkpoints(cfg, stable_from=20)
    nrn = nrn_table(dicts, cfg)
    table = stabilization_table(nrn, {m: w[1] for m, (w, _) in dicts.items()}, cfg)
    succ = table[table["kind"] == "successive"].set_index("step_to")["overlap"]
    fin = table[table["kind"] == "final"].set_index("step_from")["overlap"]
    assert succ[20] <= 0.1 and succ[30] == 1.0 and succ[40] == 1.0
    assert fin[10] <= 0.1 and fin[20] == 1.0 and fin[30] == 1.0
    assert (table["k"] == 10).all() and (table["min_nrn_from"] == 1.0).all()
    s = stabilization_summary(table, {"sft": [10, 20, 30, 40]}, cfg).set_index("run")
    assert s.loc["sft", "stable_step"] == 20 and s.loc["sft", "stable_fraction"] == 0.5


def test_k_larger_than_the_dictionary_is_clamped(cfg):
    cfg["stabilization"]["k"] = 1000
    dicts = make_checkpoints(cfg, stable_from=10, n=16, k=4)
    nrn = nrn_table(dicts, cfg)
    table = stabilization_table(nrn, {m: w[1] for m, (w, _) in dicts.items()}, cfg)
    assert (table["k"] == 16).all()


# --- Preservation ----------------------------------------------------------------------------------

def test_base_sae_statistics_on_known_dictionary():
    # A dictionary of +-e_i: perfect reconstruction (FVU 0), feature i fires where x_i > 0.
    d = 4
    x = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [3.0, 0, 0, 0], [0, 0, -1.0, 0]])
    enc = lambda x: torch.relu(torch.cat([x, -x], dim=-1))
    dec = lambda f: f[:, :d] - f[:, d:]
    feats, m = model_stats([(x[:2], None), (x[2:], None)], enc, dec, n_latents=2 * d)
    assert m["n_tokens"] == 4 and m["fvu"] == pytest.approx(0.0)
    assert feats["freq"].tolist() == [0.5, 0.25, 0, 0, 0, 0, 0.25, 0]
    assert feats.loc[0, "mean_act"] == pytest.approx(1.0) and feats.loc[0, "mean_act_active"] == pytest.approx(2.0)
    # the base against itself keeps everything; a feature that never fires has neither ratio
    assert feats.loc[0, "kept"] == 1.0 and feats.loc[0, "base_share"] == 1.0 and math.isnan(feats.loc[2, "kept"])
    # Decoding nothing leaves all the variance unexplained.
    _, m0 = model_stats([(x, None)], enc, lambda f: torch.zeros(len(f), d) + x.mean(0), n_latents=2 * d)
    assert m0["fvu"] == pytest.approx(1.0)


def test_a_feature_that_leaves_its_contexts_dies_even_where_it_fires_as_often_elsewhere():
    # Feature 0 fires on tokens 0-1 in the base; the checkpoint moved it to tokens 2-3 (same frequency, same
    # mean activation: the whole-probe statistics see no change). Feature 1 keeps its contexts at a third of
    # its activation (weakened, not dead); feature 2 appears on token 3 (born).
    enc = lambda x: torch.relu(x)
    dec = lambda f: f
    base = torch.tensor([[2.0, 3.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ckpt = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 5.0]])
    feats, _ = model_stats([(ckpt, base)], enc, dec, n_latents=3)
    assert feats["freq"].tolist() == [0.5, 0.5, 0.25]
    assert feats["kept"].tolist()[:2] == pytest.approx([0.0, 1 / 3]) and math.isnan(feats.loc[2, "kept"])
    assert feats["base_share"].tolist() == pytest.approx([0.0, 3.0, 0.0])
    alive = np.array([True, True, False])
    m = context_changes(feats["kept"].to_numpy(), feats["base_share"].to_numpy(), alive,
                        feats["freq"].to_numpy() > 0, drop=0.9, weaken=0.5)
    assert m["died"].tolist() == [True, False, False] and m["weakened"].tolist() == [True, True, False]
    assert m["born"].tolist() == [True, False, True] and m["strengthened"].tolist() == [True, False, True]


def test_born_and_died(cfg):
    base = np.array([0.5, 0.5, 0.0, 0.0, 1e-6, 0.2])
    ckpt = np.array([0.04, 0.06, 0.1, 0.0, 0.0, 0.2])
    kept = np.array([0.05, 0.2, np.nan, np.nan, 0.0, 1.0])  # feature 4 never was alive (base freq < min_freq)
    share = np.array([1.0, 1.0, 0.0, np.nan, np.nan, 0.95])

    def feats(freq, kept, share):
        return pd.DataFrame({"feature": np.arange(6), "freq": freq, "mean_act": freq, "mean_act_active": freq,
                             "kept": kept, "base_share": share})

    per_model = {"base": (feats(base, np.ones(6), np.ones(6)), {"n_tokens": 100, "fvu": 0.1, "ce_recovered": 0.9}),
                 "sft-10": (feats(ckpt, kept, share), {"n_tokens": 100, "fvu": 0.5})}
    features, summary = preservation_tables(per_model, cfg)
    s = summary.set_index("model")
    assert s.loc["sft-10", ["n_died", "n_born"]].tolist() == [1, 1] and math.isnan(s.loc["sft-10", "ce_recovered"])
    assert s.loc["base", ["n_died", "n_born"]].tolist() == [0, 0] and summary["model"].iloc[0] == "base"
    assert s.loc["sft-10", "frac_died"] == pytest.approx(1 / 3)
    assert s.loc["sft-10", ["n_weakened", "n_strengthened"]].tolist() == [2, 1]
    assert features.groupby("model").size().tolist() == [6, 6]


# --- Claims ----------------------------------------------------------------------------------------

def summaries(sft_better: bool):
    """Summary tables where SFT shows the paper's pattern (or RL does, when sft_better is False)."""
    hi, lo = (1, 0) if sft_better else (0, 1)
    nrn = pd.DataFrame({"run": ["sft", "sft", "rl", "rl"], "step": [10, 20, 10, 20],
                        "n_tuned_specific": [5, 10 + 20 * hi, 5, 10 + 20 * lo],
                        "n_tuned_specific_scaled": [2, 4 + 6 * hi, 2, 4 + 6 * lo],
                        "tail_mass": [0.1, 0.1 + 0.2 * hi, 0.1, 0.1 + 0.2 * lo]})
    stab = pd.DataFrame({"run": ["sft", "rl"], "stable_fraction": [0.5 + 0.5 * lo, 0.5 + 0.5 * hi],
                         "mean_overlap_final": [0.3 + 0.5 * hi, 0.3 + 0.5 * lo]})
    mas = pd.DataFrame({"owner": ["base", "sft", "rl", "none"], "n_exclusive": [50, 10 + 20 * hi, 10 + 20 * lo, 0]})
    pres = pd.DataFrame({"run": ["base", "sft", "rl"], "step": [0, 20, 20], "fvu": [0.1, 0.2 + 0.5 * hi, 0.2 + 0.5 * lo],
                         "ce_recovered": [0.9, 0.8 - 0.5 * hi, 0.8 - 0.5 * lo], "n_died": [0, 3 * hi, 3 * lo],
                         "n_born": [0, 2 * hi, 2 * lo]})
    return nrn, stab, mas, pres


def test_claims_are_computed_yes_and_no(cfg):
    yes = claims_table(*summaries(True), cfg)
    assert set(yes["verdict"]) == {"yes"} and yes["supports"].all() and len(yes) == 9
    assert yes["evidence"].str.contains("latent scaling keeps").sum() == 1
    assert set(yes["claim"]) == {"more_tuned_specific", "earlier_stabilization", "base_preservation"}
    no = claims_table(*summaries(False), cfg)
    assert set(no["verdict"]) == {"no"} and not no["supports"].any()


def test_claims_mixed_and_unknown(cfg):
    nrn, stab, mas, pres = summaries(True)
    pres["ce_recovered"] = float("nan")  # not measured: left out of the verdict
    pres.loc[pres["run"] == "rl", "fvu"] = 0.99  # RL preserves worse by FVU only
    t = claims_table(nrn, stab, mas, pres, cfg)
    p = t[t["claim"] == "base_preservation"]
    assert p["verdict"].iloc[0] == "mixed" and p["supports"].tolist() == [False, None, True]
    empty = claims_table(nrn.iloc[:0], stab.iloc[:0], mas.iloc[:0], pres.iloc[:0], cfg)
    assert set(empty["verdict"]) == {"unknown"}


# --- Claims over dictionary seeds ------------------------------------------------------------------

def verdicts_over_seeds(cfg, *tables):
    t = claims_over_seeds(dict(enumerate(tables)))
    return t.groupby("claim", sort=False)["verdict"].first().to_dict()


def test_a_claim_holds_over_seeds_only_when_every_seed_says_so(cfg):
    yes, no = claims_table(*summaries(True), cfg), claims_table(*summaries(False), cfg)
    t = claims_over_seeds({0: yes, 1: yes, 2: yes})
    assert len(t) == 27 and t.groupby("seed").size().to_dict() == {0: 9, 1: 9, 2: 9}
    assert set(t["verdict"]) == {"yes"} and set(t["seed_verdict"]) == {"yes"}
    assert set(claims_over_seeds({0: no, 1: no})["verdict"]) == {"no"}
    # One seed against: the claim is mixed, and each row keeps its seed's own verdict.
    t = claims_over_seeds({0: yes, 2: no})
    assert set(t["verdict"]) == {"mixed"} and t.groupby("seed")["seed_verdict"].first().to_dict() == {0: "yes", 2: "no"}
    # A seed whose own verdict is mixed, or unknown, supports nothing: mixed over seeds.
    nrn, stab, mas, pres = summaries(True)
    pres.loc[pres["run"] == "rl", "fvu"] = 0.99
    part = claims_table(nrn, stab, mas, pres, cfg)
    v = verdicts_over_seeds(cfg, yes, part)
    assert v == {"more_tuned_specific": "yes", "earlier_stabilization": "yes", "base_preservation": "mixed"}
    empty = claims_table(nrn.iloc[:0], stab.iloc[:0], mas.iloc[:0], pres.iloc[:0], cfg)
    assert set(verdicts_over_seeds(cfg, yes, empty).values()) == {"mixed"}
    assert set(verdicts_over_seeds(cfg, empty, empty).values()) == {"unknown"}


def test_seed_spread_and_markdown(cfg):
    tables = {}
    for seed, n_sft in ((0, 30), (1, 20), (2, 40)):
        nrn, stab, mas, pres = summaries(True)
        nrn.loc[(nrn["run"] == "sft") & (nrn["step"] == 20), "n_tuned_specific"] = n_sft
        if seed == 2:
            pres["ce_recovered"] = float("nan")  # a replica without the CE splice
        tables[seed] = claims_table(nrn, stab, mas, pres, cfg)
    t = claims_over_seeds(tables)
    sp = seed_spread(t).set_index("evidence")
    row = sp.loc[sp.index.str.startswith("tuned-specific features (NRN")].iloc[0]
    assert (row["sft_min"], row["sft_max"], row["sft_mean"]) == (20, 40, 30) and row["sft_sd"] == pytest.approx(10.0)
    assert row["rl_min"] == row["rl_max"] == 10 and row["rl_sd"] == 0 and row["n_seeds"] == 3
    ce = sp.loc["base-SAE CE-loss recovered, final checkpoint"]
    assert ce["n_seeds"] == 2 and ce["sft_min"] == ce["sft_max"] == pytest.approx(0.3)
    md = claims_markdown(t)
    assert md.count("### ") == 3 and "Per dictionary seed: 0 yes, 1 yes, 2 yes." in md
    assert "| 30 / 20 / 40 | 20 to 40 | 10 / 10 / 10 | 10 |" in md
    assert "| 0.3 / 0.3 / n/a | 0.3 |" in md and "| yes / yes / n/a |" in md


# --- Seed match ------------------------------------------------------------------------------------

def test_identical_and_permuted_replicas_match_at_rate_one():
    g = torch.Generator().manual_seed(11)
    w = torch.stack([unit_rows(40, 16, g), unit_rows(40, 16, g)])  # a crosscoder of two models
    live = torch.ones(40, dtype=torch.bool)
    perm = torch.randperm(40, generator=g)
    for w_b in (w, w[:, perm]):
        r = match_rate(w, w_b, live, live, 0.7)
        assert r["match_rate"] == 1.0 and r["n_matched"] == 40 and r["mean_cos"] == pytest.approx(1.0)


def test_random_replicas_match_rarely_and_every_model_counts():
    g = torch.Generator().manual_seed(12)
    a, b = unit_rows(40, 64, g)[None], unit_rows(40, 64, g)[None]
    live = torch.ones(40, dtype=torch.bool)
    assert match_rate(a, b, live, live, 0.7)["match_rate"] <= 0.05
    # Same decoders in model 0, unrelated in model 1: the joint cosine is ~0.5, below 0.7.
    w_a = torch.stack([a[0], unit_rows(40, 64, g)])
    w_b = torch.stack([a[0], unit_rows(40, 64, g)])
    assert match_rate(w_a, w_b, live, live, 0.7)["n_matched"] == 0
    assert match_rate(w_a, w_b, live, live, 0.3)["match_rate"] == 1.0


def test_seed_match_table_counts_live_latents_only():
    g = torch.Generator().manual_seed(13)
    w = unit_rows(20, 16, g)[None]
    live = torch.arange(20) < 15
    t = seed_match_table({"sae-base": {0: (w, live), 1: (w, torch.ones(20, dtype=torch.bool)),
                                       2: (unit_rows(20, 16, g)[None], live)}}, 0.7)
    assert t["seed_b"].tolist() == [1, 2] and (t["seed_a"] == 0).all()
    assert t.iloc[0][["n_live_a", "n_live_b", "n_matched", "match_rate"]].tolist() == [15, 20, 15, 1.0]
    assert t.iloc[1]["match_rate"] < 0.2
    assert len(seed_match_table({"sae-base": {0: (w, live)}}, 0.7)) == 0


# --- The stage's jobs on dictionaries on disk -------------------------------------------------------

def write_dict(path, w_dec, models, b_enc=None):
    """A loadable ReLU dictionary with decoder w_dec and a zero encoder: latents fire where b_enc > 0 (none by
    default)."""
    m, n, d = w_dec.shape
    D = Dictionary(m, d, n, arch="relu", cfg={"name": path.parent.name, "models": models, "layer": 1})
    with torch.no_grad():
        D.W_dec.copy_(w_dec)
        if b_enc is not None:
            D.b_enc.copy_(b_enc)
    D.save(path)


def test_seed_match_job_matches_a_permuted_replica(tmp_path, cfg):
    g = torch.Generator().manual_seed(14)
    models = ["base", "sft-40"]
    w = torch.stack([unit_rows(24, 32, g), unit_rows(24, 32, g)])
    b = (torch.arange(24) < 18).float()  # 18 live latents
    perm = torch.randperm(24, generator=g)
    dirs = {0: tmp_path / "dicts/cc-sft-40/layer-1", 1: tmp_path / "dicts/cc-sft-40/seed-1/layer-1",
            2: tmp_path / "dicts/cc-sft-40/seed-2/layer-1"}
    write_dict(dirs[0], w, models, b)
    write_dict(dirs[1], w[:, perm], models, b[perm])
    write_dict(dirs[2], torch.stack([unit_rows(24, 32, g), unit_rows(24, 32, g)]), models, torch.ones(24))
    paths = write_synthetic_shards(tmp_path, np.random.default_rng(0).standard_normal((64, 2, 32)).astype(np.float32),
                                   models)
    out = {"table": str(tmp_path / "seed_match.parquet"), "markdown": str(tmp_path / "seed_match.md")}
    rates = stage.seed_match_job({"cc-sft-40": {s: str(d) for s, d in dirs.items()}}, dict(zip(models, paths)),
                                 {"holdout_every": 2, "eval_tokens": 1000}, cfg, 1, out)
    t = pd.read_parquet(out["table"])
    assert t[["seed_b", "n_latents", "n_live_a", "n_live_b"]].values.tolist() == [[1, 24, 18, 18], [2, 24, 18, 24]]
    assert rates["cc-sft-40 0-1"] == 1.0 and rates["cc-sft-40 0-2"] < 0.2
    assert "| cc-sft-40 | 0 vs 1 | 18 / 18 of 24 | 18 | 1 | 1 |" in (tmp_path / "seed_match.md").read_text()


def test_jobs_write_tables_plots_and_claims(tmp_path, cfg):
    cfg["stabilization"]["k"] = 10
    dirs = {}
    for run, stable_from, seed in (("sft", 20, 5), ("rl", 40, 6)):
        for model, (w, models) in make_checkpoints(cfg, stable_from, seed=seed).items():
            model = model.replace("sft", run)
            dirs[model] = tmp_path / "dicts" / f"cc-{model}" / "layer-1"
            write_dict(dirs[model], w, ["base", model])
    models = ["base"] + sorted(dirs)
    g = np.random.default_rng(0)
    paths = write_synthetic_shards(tmp_path, g.standard_normal((64, len(models), 32)).astype(np.float32), models)
    shards = dict(zip(models, paths))
    rows = {"holdout_every": 2, "eval_tokens": 1000}
    out = lambda **kw: {k: str(tmp_path / "drift" / v) for k, v in kw.items()}
    o_nrn = out(features="nrn.parquet", summary="nrn_summary.parquet", hist="nrn_hist.png", plot="nrn_summary.png")
    stage.nrn_job({m: str(p) for m, p in dirs.items()}, shards, rows, cfg, 1, o_nrn)
    features = pd.read_parquet(o_nrn["features"])
    assert set(nrn.SCALING) <= set(features.columns) and not features["truly_specific"].any()  # nothing fires
    o_stab = out(pairs="stabilization.parquet", summary="stabilization_summary.parquet", plot="stabilization.png")
    info = stage.stabilization_job(o_nrn["features"], {m: str(p) for m, p in dirs.items()}, cfg, o_stab)
    assert info["summary"]["sft"]["stable_step"] == 20 and info["summary"]["rl"]["stable_step"] == 40

    g = torch.Generator().manual_seed(7)
    w3 = torch.stack([unit_rows(20, 32, g) for _ in range(3)])
    w3[[0, 2], :8] = 0.0  # 8 SFT-owned, 12 shared three ways
    write_dict(tmp_path / "dicts/cc3/layer-1", w3, ["base", "sft-40", "rl-40"])
    o_mas = out(features="mas.parquet", owners="mas_owners.parquet", plot="mas_owners.png")
    owners = stage.mas_job(tmp_path / "dicts/cc3/layer-1", shards, rows, cfg, 1, o_mas)
    assert owners["sft"]["n_exclusive"] == 8 and sum(o["n_features"] for o in owners.values()) == 20
    assert owners["sft"]["n_exclusive_scaled"] == 0

    per = {}
    for i, model in enumerate(["base", "sft-40", "rl-40"]):
        f = pd.DataFrame({"feature": np.arange(4), "freq": [0.5, 0.5, 0.1, 0.0], "mean_act": 1.0, "mean_act_active": 1.0,
                          "kept": [1.0, 1.0, 1.0, np.nan], "base_share": [1.0, 1.0, 1.0, np.nan]})
        if model == "sft-40":  # feature 0 gone from its contexts, feature 3 new
            f["freq"] = [0.0, 0.5, 0.1, 0.3]
            f["kept"] = [0.0, 1.0, 1.0, np.nan]
            f["base_share"] = [np.nan, 1.0, 1.0, 0.0]
        f.to_parquet(tmp_path / f"{model}.parquet")
        (tmp_path / f"{model}.json").write_text(json.dumps({"n_tokens": 10, "fvu": 0.1 * (i + 1), "ce_recovered": None}))
        per[model] = (tmp_path / f"{model}.parquet", tmp_path / f"{model}.json")
    o_pres = out(features="preservation_features.parquet", summary="preservation.parquet", plot="preservation.png")
    stage.preservation_job(per, cfg, o_pres)

    o_claims = out(table="claims.parquet", markdown="claims.md")
    verdicts = stage.claims_job({0: {"nrn": o_nrn["summary"], "stabilization": o_stab["summary"], "mas": o_mas["owners"],
                                     "preservation": o_pres["summary"]}}, cfg, o_claims)
    # More tuned-specific: equal counts (10 each), none kept by latent scaling, equal tail mass -> no;
    # MAS owners say SFT -> mixed.
    assert verdicts["more_tuned_specific"] == "mixed"
    assert verdicts["earlier_stabilization"] == "yes"
    # SFT FVU 0.2 < RL FVU 0.3, SFT died+born 2 > RL 0; CE not measured -> mixed.
    assert verdicts["base_preservation"] == "mixed"
    claims = pd.read_parquet(o_claims["markdown"].replace(".md", ".parquet"))
    assert len(claims) == 9 and set(claims["seed"]) == {0} and (claims["seed_verdict"] == claims["verdict"]).all()
    assert "earlier_stabilization" not in (tmp_path / "drift/claims.md").read_text()
    assert "stabilizes earlier than RL's: **yes**" in (tmp_path / "drift/claims.md").read_text()
    for p in list(o_nrn.values()) + list(o_stab.values()) + list(o_mas.values()) + list(o_pres.values()):
        assert (tmp_path / "drift" / p).stat().st_size > 0


def test_bad_thresholds_are_a_config_error(cfg):
    cfg["nrn"]["base_specific"] = 0.95
    with pytest.raises(ConfigError, match="drift.nrn.base_specific"):
        DriftSettings.of(cfg)


def test_decoder_shape_is_checked(tmp_path):
    write_dict(tmp_path / "d", torch.zeros(2, 4, 3), ["base"])
    with pytest.raises(ValueError, match="W_dec has shape"):
        read_decoder(tmp_path / "d")


def write_shard(path, model, x, seq_id):
    import pyarrow.parquet as pq

    from featdrift.activations.store import act_batch, act_schema

    n, d = x.shape
    meta = {"model": model, "layer": 1, "hook": "resid_post", "d_model": d, "dtype": "float32", "tokenizer_hash": "t",
            "probe_hash": "p", "shard": 0, "n_shards": 1, "n_rows": n}
    schema = act_schema(d, "float32", meta)
    with pq.ParquetWriter(path, schema) as w:
        w.write_batch(act_batch(schema, seq_id.astype(np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32),
                                x.numpy().astype(np.float32)))


def test_preservation_model_job_with_a_saved_sae(tmp_path):
    from featdrift.dictionaries.model import Dictionary

    # SAE with latents +-e_i (relu): exact reconstruction of any x, feature i fires where x_i > 0.
    d = 4
    D = Dictionary(1, d, 2 * d, arch="relu", scales=[2.0], cfg={"models": ["base"]})
    with torch.no_grad():
        D.W_enc[0] = torch.cat([torch.eye(d), -torch.eye(d)], dim=1)
        D.W_dec[0] = torch.cat([torch.eye(d), -torch.eye(d)], dim=0)
    D.save(tmp_path / "sae")
    g = torch.Generator().manual_seed(8)
    x = torch.randn(40, d, generator=g)
    x[:, 3] = x[:, 3].abs()  # feature 3 fires on every token
    seq = np.repeat(np.arange(10), 4)  # holdout_every 2: sequences 0, 2, 4, 6, 8 -> 20 rows
    write_shard(tmp_path / "part-0.parquet", "sft-10", x, seq)
    out = {"features": str(tmp_path / "f.parquet"), "metrics": str(tmp_path / "m.json")}
    m = stage.preservation_model_job(tmp_path / "sae", [str(tmp_path / "part-0.parquet")], None, None, holdout_every=2,
                                     max_tokens=12, ce_sequences=0, threads=1, out=out)
    assert m["n_tokens"] == 12 and m["fvu"] == pytest.approx(0.0, abs=1e-10) and m["ce_recovered"] is None
    f = pd.read_parquet(out["features"])
    held = x[torch.as_tensor(seq % 2 == 0)][:12]
    assert f["freq"].tolist() == pytest.approx(torch.cat([(held > 0), (held < 0)], 1).double().mean(0).tolist())
    assert f.loc[3, "freq"] == 1.0 and f.loc[7, "freq"] == 0.0
    # mean activation is in the SAE's scaled units (x * 2).
    assert f.loc[3, "mean_act"] == pytest.approx(float(2 * held[:, 3].mean()), rel=1e-5)
    assert f.loc[3, "kept"] == pytest.approx(1.0)  # without base shards the model is its own reference
    # Against a base whose feature 3 fires at twice the size on the same (paired) tokens: half is kept.
    xb = x.clone()
    xb[:, 3] *= 2
    write_shard(tmp_path / "base-0.parquet", "base", xb, seq)
    stage.preservation_model_job(tmp_path / "sae", [str(tmp_path / "part-0.parquet")], None, None, holdout_every=2,
                                 max_tokens=12, ce_sequences=0, threads=1, out=out,
                                 base_shards=[str(tmp_path / "base-0.parquet")])
    f = pd.read_parquet(out["features"])
    assert f.loc[3, "kept"] == pytest.approx(0.5, rel=1e-5) and f.loc[3, "base_share"] == pytest.approx(2.0, rel=1e-5)
