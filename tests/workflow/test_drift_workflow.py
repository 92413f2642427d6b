"""The drift stage end to end on the tiny config: every table and plot, the claims, and its rebuild scope."""

import json

import pandas as pd
import pytest

from featdrift.analysis.nrn import SCALING
from helpers import FULL_CONFIG, merged, snakemake

pytestmark = pytest.mark.slow
LAYER = "layer-1"  # configs/test.yaml: activations.layers [1]
TABLES = ["nrn", "nrn_summary", "stabilization", "stabilization_summary", "mas", "mas_owners",
          "preservation", "preservation_features", "claims"]
PLOTS = ["nrn_hist", "nrn_summary", "stabilization", "mas_owners", "preservation"]
SEEDS = [0, 1]  # configs/test.yaml: drift.seeds


@pytest.fixture(scope="module")
def drift(tiny_full):
    """The drift stage of the session's full tiny build (built once, shared with the other end-to-end tests)."""
    return tiny_full / "results/drift" / LAYER


def test_every_table_and_plot_is_written(drift):
    for t in TABLES:
        assert len(pd.read_parquet(drift / f"{t}.parquet")) > 0, t
    for p in PLOTS:
        assert (drift / f"{p}.png").stat().st_size > 5000, p
    for rule in ("nrn", "stabilization", "mas", "preservation", "claims"):
        rec = json.loads((drift / f"{rule}.lineage.json").read_text())
        assert rec["rule"] == f"drift_{rule}"
        assert rec["params"]["drift"].get("norm", "l2") == "l2"  # each job gets only the drift keys it reads


def test_every_replica_has_its_dictionaries_and_tables(drift, tiny_full):
    for name in ("sae-base", "cc3", "cc-sft-8", "cc-rl-4"):
        primary, replica = (tiny_full / f"results/dicts/{name}/{p}{LAYER}" for p in ("", "seed-1/"))
        cfg = json.loads((replica / "cfg.json").read_text())
        assert cfg["seed"] == json.loads((primary / "cfg.json").read_text())["seed"] + 1
        assert (replica / "curve.parquet").is_file() and not (replica / "saelens").exists()
        assert not (replica / "metrics.json").exists()
    rep = drift / "seed-1"
    for t in TABLES[:-1]:
        assert len(pd.read_parquet(rep / f"{t}.parquet")) > 0, t
    for rule in ("nrn", "stabilization", "mas", "preservation"):
        assert json.loads((rep / f"{rule}.lineage.json").read_text())["rule"] == f"drift_{rule}_seed"
    pres = json.loads((rep / "preservation/sft-8.lineage.json").read_text())
    assert pres["params"]["ce_sequences"] == 0 and pres["params"]["dict_dir"].endswith(f"sae-base/seed-1/{LAYER}")
    assert pd.read_parquet(rep / "preservation.parquet")["ce_recovered"].isna().all()


def test_seed_match_pairs_the_primary_with_every_replica(drift):
    match = pd.read_parquet(drift / "seed_match.parquet")
    assert sorted(match["dict"]) == sorted(["sae-base", "cc3", "cc-sft-4", "cc-sft-8", "cc-rl-4", "cc-rl-8"])
    assert (match["seed_a"] == 0).all() and (match["seed_b"] == 1).all()
    assert match["match_rate"].between(0, 1).all() and (match["n_live_a"] <= match["n_latents"]).all()
    assert (match["n_matched"] <= match["n_live_a"]).all()
    assert "| sae-base | 0 vs 1 |" in (drift / "seed_match.md").read_text()


def test_tables_cover_every_checkpoint(drift):
    nrn = pd.read_parquet(drift / "nrn_summary.parquet")
    steps = sorted(nrn[nrn["run"] == "sft"]["step"])
    assert sorted(nrn[nrn["run"] == "rl"]["step"]) == steps and len(steps) >= 2
    pres = pd.read_parquet(drift / "preservation.parquet")
    assert pres["model"].tolist()[0] == "base" and len(pres) == 1 + 2 * len(steps)
    assert pres["fvu"].notna().all() and pres["ce_recovered"].notna().all()
    stab = pd.read_parquet(drift / "stabilization.parquet")
    assert set(stab["kind"]) == {"successive", "final"} and stab["overlap"].between(0, 1).all()
    mas = pd.read_parquet(drift / "mas.parquet")
    assert {"mas_base", "mas_sft", "mas_rl", "owner"} <= set(mas.columns)


def test_latent_scaling_columns_cover_the_specific_features(drift):
    nrn = pd.read_parquet(drift / "nrn.parquet")
    assert set(SCALING) <= set(nrn.columns) and nrn["truly_specific"].dtype == bool
    specific = nrn["class"].isin(["tuned_specific", "base_specific"])
    assert nrn.loc[~specific, list(SCALING[:-1])].isna().all().all() and not nrn.loc[~specific, "truly_specific"].any()
    assert nrn.loc[nrn["truly_specific"], ["nu_recon", "nu_error"]].abs().lt(0.2).all().all()
    s = pd.read_parquet(drift / "nrn_summary.parquet")
    assert (s["n_tuned_specific_scaled"] <= s["n_tuned_specific"]).all()
    assert (s["n_base_specific_scaled"] <= s["n_base_specific"]).all()
    mas = pd.read_parquet(drift / "mas.parquet")
    assert {"nu_error_sft", "nu_recon_rl", "truly_exclusive"} <= set(mas.columns)
    owners = pd.read_parquet(drift / "mas_owners.parquet")
    assert (owners["n_exclusive_scaled"] <= owners["n_exclusive"]).all()


def test_claims_are_decided_from_numbers(drift):
    claims = pd.read_parquet(drift / "claims.parquet")
    assert len(claims) == 9 * len(SEEDS) and claims["claim"].nunique() == 3
    assert claims.groupby("seed").size().to_dict() == {s: 9 for s in SEEDS}
    assert set(claims["verdict"]) | set(claims["seed_verdict"]) <= {"yes", "no", "mixed", "unknown"}
    for claim, g in claims.groupby("claim"):  # yes (no) over seeds only when every seed says so
        per_seed = set(g["seed_verdict"])
        assert g["verdict"].nunique() == 1
        assert (g["verdict"].iloc[0] in ("yes", "no")) == (len(per_seed) == 1 and per_seed <= {"yes", "no"})
    # Every number is known, but the replicas' CE-loss recovered: their preservation skips the CE splice.
    ce = claims["evidence"].str.contains("CE-loss")
    primary = claims["seed"] == 0
    assert claims.loc[primary | ~ce, ["sft", "rl"]].notna().all().all()
    assert claims.loc[~primary & ce, ["sft", "rl"]].isna().all().all()
    md = (drift / "claims.md").read_text()
    assert md.count("### ") == 3 and md.count("Per dictionary seed: 0 ") == 3 and "SFT (seeds 0, 1)" in md


def test_a_drift_threshold_change_reruns_only_drift(drift, tiny_full):
    proc = snakemake(tiny_full, "-n", f"results/drift/{LAYER}/claims.lineage.json",
                     config=merged(FULL_CONFIG, {"drift": {"nrn": {"tail": 0.8}}}), override_name="drift-tail.yaml")
    out = proc.stdout + proc.stderr
    assert "drift_nrn" in out and "drift_claims" in out
    assert "drift_nrn_seed" in out
    for rule in ("crosscoder", "sae", "dictionary_seed", "activations", "sft", "rl", "drift_preservation_model",
                 "drift_preservation_model_seed", "drift_seed_match"):
        assert f"rule {rule}:" not in out, rule
