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
    assert len(claims) == 9 and claims["claim"].nunique() == 3
    assert set(claims["verdict"]) <= {"yes", "no", "mixed", "unknown"}
    assert claims["sft"].notna().all() and claims["rl"].notna().all()
    assert (drift / "claims.md").read_text().count("### ") == 3


def test_a_drift_threshold_change_reruns_only_drift(drift, tiny_full):
    proc = snakemake(tiny_full, "-n", f"results/drift/{LAYER}/claims.lineage.json",
                     config=merged(FULL_CONFIG, {"drift": {"nrn": {"tail": 0.8}}}), override_name="drift-tail.yaml")
    out = proc.stdout + proc.stderr
    assert "drift_nrn" in out and "drift_claims" in out
    for rule in ("crosscoder", "sae", "activations", "sft", "rl", "drift_preservation_model"):
        assert f"rule {rule}:" not in out, rule
