"""Latent scaling on planted ground truth: hand-built crosscoders over activations whose directions are known.

Every latent reads one known unit direction from one model and decodes it exactly where its decoder is
non-zero. Directions present only in the model a latent decodes are truly specific (nu ~ 0); directions
that the other model carries too, but that the decoder puts in one model only, are the shrinkage
artifact (nu_error ~ 1); a direction that another latent rebuilds in the other model is latent
decoupling (nu_recon ~ 1). NRN calls all of them specific (NRN 0 or 1): only the ratios tell them apart.
"""

import numpy as np
import pandas as pd
import torch

from featdrift.analysis import mas, nrn, stage
from featdrift.analysis.latent_scaling import latent_betas, scaling_ratios, truly_specific
from featdrift.dictionaries.model import Dictionary
from helpers.acts import write_synthetic_shards

D_MODEL, SCALE = 16, 2.0
B, T = 0, 1  # model indices of the pairwise world: [base, tuned]
# Pairwise latents: (model the encoder reads, models the decoder writes, direction).
PAIR_LATENTS = [
    (T, (B, T), 0), (T, (B, T), 1), (T, (B, T), 2),  # 0-2 shared
    (T, (T,), 3), (T, (T,), 4),  # 3-4 tuned-specific, direction only in the tuned model: truly specific
    (T, (T,), 5), (T, (T,), 6),  # 5-6 tuned-only decoder, direction in both models: shrinkage artifact
    (B, (B,), 7),  # 7 base-specific, direction only in base: truly specific
    (None, (T,), 8),  # 8 tuned-specific, never fires: NaN ratios
    (T, (T,), 9), (B, (B,), 9),  # 9-10 direction 9 in both models, split into one latent per model: decoupling
]
PAIR_PRESENT = {0: (B, T), 1: (B, T), 2: (B, T), 3: (T,), 4: (T,), 5: (B, T), 6: (B, T), 7: (B,), 8: (), 9: (B, T)}


def planted(n_models, latents, present, n_rows=2048, seed=0):
    """(Dictionary with scales SCALE, raw activations (n_rows, M, d)) of a planted world (see module doc)."""
    g = np.random.default_rng(seed)
    Q = np.linalg.qr(g.standard_normal((D_MODEL, D_MODEL)))[0].T.astype(np.float32)  # orthonormal rows
    codes = g.uniform(1.0, 3.0, (n_rows, D_MODEL)) * (g.random((n_rows, D_MODEL)) < 0.3)
    xs = 0.01 * g.standard_normal((n_rows, n_models, D_MODEL))
    for k, models in present.items():
        for m in models:
            xs[:, m] += codes[:, k, None] * Q[k]
    D = Dictionary(n_models, D_MODEL, len(latents), arch="relu", scales=[SCALE] * n_models)
    with torch.no_grad():
        for j, (reads, writes, k) in enumerate(latents):
            if reads is not None:
                D.W_enc[reads, :, j] = torch.from_numpy(Q[k]) / SCALE  # pre = direction k's code
            for m in writes:
                D.W_dec[m, j] = torch.from_numpy(Q[k]) * SCALE  # exact decoder, in scaled units
    return D, xs.astype(np.float32)


def pair_world(**kw):
    D, xs = planted(2, PAIR_LATENTS, PAIR_PRESENT, **kw)
    D.cfg.update({"name": "cc-sft-10", "models": ["base", "sft-10"], "layer": 0})
    return D, xs


def specific_of(D, cfg):
    table = nrn.nrn_features(D.W_dec.detach(), ["base", "sft-10"], cfg)
    return table, nrn.specific_models(table["class"].to_numpy(), ["base", "sft-10"])


def test_ratios_separate_truly_specific_latents_from_shrinkage_and_decoupling(cfg):
    D, xs = pair_world()
    table, spec = specific_of(D, cfg)
    # Decoder norms alone cannot tell them apart: every planted specific latent has NRN 1 or 0.
    assert (table.loc[[3, 4, 5, 6, 8, 9], "nrn"] == 1.0).all() and (table.loc[[7, 10], "nrn"] == 0.0).all()
    assert spec.tolist() == [-1, -1, -1, T, T, T, T, B, T, T, B]
    batches = torch.from_numpy(xs).split(300)  # streamed in uneven batches
    recon, error = latent_betas(D, batches, spec)
    nu_r, nu_e = scaling_ratios(recon, spec), scaling_ratios(error, spec)
    other = np.where(spec == B, T, B)
    j = np.arange(D.n)
    r, e = nu_r[other, j], nu_e[other, j]
    assert np.allclose(error[spec[3:8], j[3:8]], 1.0, atol=0.02)  # the specific model's own scale is ~1
    assert np.abs(r[[3, 4, 7]]).max() < 0.02 and np.abs(e[[3, 4, 7]]).max() < 0.02  # truly specific: ~0
    assert np.allclose(e[[5, 6]], 1.0, atol=0.02) and np.abs(r[[5, 6]]).max() < 0.02  # shrinkage: nu_error ~1
    assert np.allclose(r[[9, 10]], 1.0, atol=0.02) and np.abs(e[[9, 10]]).max() < 0.02  # decoupling: nu_recon ~1
    assert np.isnan(recon[:, [0, 1, 2, 8]]).all() and np.isnan(r[8]) and np.isnan(e[8])  # shared skipped, 8 never fired
    kept = truly_specific(nu_r, nu_e, spec, max_ratio=0.2)
    assert np.flatnonzero(kept).tolist() == [3, 4, 7]


def test_streaming_sums_equal_one_pass(cfg):
    D, xs = pair_world(n_rows=600)
    _, spec = specific_of(D, cfg)
    x = torch.from_numpy(xs)
    one = latent_betas(D, [x], spec)
    many = latent_betas(D, x.split(7), spec)
    for a, b in zip(one, many):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True)  # float32 projections per batch
    none = latent_betas(D, [x], np.full(D.n, -1))
    assert np.isnan(none[0]).all() and np.isnan(none[1]).all()


def test_nrn_job_writes_latent_scaling_on_held_out_rows(tmp_path, cfg):
    D, xs = pair_world(n_rows=1024)
    D.save(tmp_path / "dicts/cc-sft-10/layer-0")
    paths = write_synthetic_shards(tmp_path, xs, ["base", "sft-10"], rows_per_group=128, seq_len=16)
    out = {k: str(tmp_path / "drift" / v) for k, v in
           dict(features="nrn.parquet", summary="nrn_summary.parquet", hist="h.png", plot="s.png").items()}
    rows = {"holdout_every": 3, "eval_tokens": 200}
    info = stage.nrn_job({"sft-10": str(tmp_path / "dicts/cc-sft-10/layer-0")}, dict(zip(["base", "sft-10"], paths)),
                         rows, cfg, 1, out)
    f = pd.read_parquet(out["features"])
    assert list(f.columns[-len(nrn.SCALING):]) == list(nrn.SCALING)
    assert f.loc[f["truly_specific"], "feature"].tolist() == [3, 4, 7]
    assert f.loc[[0, 1, 2], list(nrn.SCALING[:-1])].isna().all().all() and not f.loc[[0, 1, 2], "truly_specific"].any()
    assert f.loc[[5, 6], "nu_error"].between(0.9, 1.1).all() and f.loc[[9, 10], "nu_recon"].between(0.9, 1.1).all()
    # The betas are those of the first eval_tokens held-out rows (seq_id % holdout_every == 0), in store order.
    held = torch.from_numpy(xs[(np.arange(len(xs)) // 16) % 3 == 0][:200])
    recon, error = latent_betas(D, [held], nrn.specific_models(f["class"].to_numpy(), ["base", "sft-10"]))
    np.testing.assert_allclose(f["beta_error_base"], error[B], rtol=1e-6, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(f["beta_recon_tuned"], recon[T], rtol=1e-6, atol=1e-7, equal_nan=True)
    s = pd.read_parquet(out["summary"]).iloc[0]
    assert (s["n_tuned_specific"], s["n_tuned_specific_scaled"]) == (6, 2)
    assert (s["n_base_specific"], s["n_base_specific_scaled"]) == (2, 1)
    assert info["final"]["sft"]["n_tuned_specific_scaled"] == 2


def test_max_ratio_sets_what_counts_as_specific(cfg):
    D, xs = pair_world(n_rows=600)
    _, spec = specific_of(D, cfg)
    recon, error = latent_betas(D, [torch.from_numpy(xs)], spec)
    betas = {"sft-10": (["base", "sft-10"], recon, error)}
    table = nrn.nrn_table({"sft-10": (D.W_dec.detach(), ["base", "sft-10"])}, cfg)
    strict = nrn.with_latent_scaling(table, betas, cfg)
    cfg["latent_scaling"]["max_ratio"] = 1.5  # above nu ~ 1: every specific latent that fires passes
    loose = nrn.with_latent_scaling(table, betas, cfg)
    assert cfg["latent_scaling"] == {"max_ratio": 1.5}
    assert strict["truly_specific"].sum() == 3 and loose["truly_specific"].sum() == 7  # all specific but 8


def test_mas_latent_scaling_of_exclusive_owners(tmp_path, cfg):
    base, sft, rl = 0, 1, 2
    latents = [
        (sft, (base, sft, rl), 0),  # 0 shared three ways
        (sft, (sft,), 1),  # 1 sft-owned, direction only in sft: truly exclusive
        (sft, (sft,), 2),  # 2 sft-owned, direction in rl too: shrinkage artifact against rl
        (rl, (rl,), 3),  # 3 rl-owned, direction in base and rl: shrinkage artifact against base
    ]
    present = {0: (base, sft, rl), 1: (sft,), 2: (sft, rl), 3: (base, rl)}
    D, xs = planted(3, latents, present, n_rows=1024)
    models = ["base", "sft-20", "rl-20"]
    D.cfg.update({"name": "cc3", "models": models, "layer": 0})
    D.save(tmp_path / "cc3")
    paths = write_synthetic_shards(tmp_path, xs, models, rows_per_group=128, seq_len=16)
    out = {k: str(tmp_path / v) for k, v in dict(features="mas.parquet", owners="owners.parquet", plot="o.png").items()}
    owners = stage.mas_job(tmp_path / "cc3", dict(zip(models, paths)), {"holdout_every": 2, "eval_tokens": 10**6},
                           cfg, 1, out)
    t = pd.read_parquet(out["features"])
    assert t["truly_exclusive"].tolist() == [False, True, False, False]
    assert t.loc[1, ["nu_error_base", "nu_error_rl", "nu_recon_base", "nu_recon_rl"]].abs().max() < 0.02
    assert np.isnan(t.loc[1, "nu_error_sft"]) and t.loc[[0], [c for c in t if c.startswith("nu_")]].isna().all().all()
    assert abs(t.loc[2, "nu_error_rl"] - 1) < 0.02 and abs(t.loc[2, "nu_error_base"]) < 0.02
    assert abs(t.loc[3, "nu_error_base"] - 1) < 0.02 and abs(t.loc[3, "nu_error_sft"]) < 0.02
    assert {o: (v["n_exclusive"], v["n_exclusive_scaled"]) for o, v in owners.items()} == {
        "base": (0, 0), "sft": (2, 1), "rl": (1, 0), "none": (0, 0)}
