"""calibration.plant: the planted series differ from the base exactly by the planted writes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from featdrift.activations.capture import pad_batch, run_capture
from featdrift.calibration import plant
from featdrift.models.load import load_model

from helpers.acts import make_model

CFG = {"n_base": 2, "n_removed": 2, "n_sft": 3, "n_rl": 1, "rotation_deg": 60, "density": 0.05,
       "strength": [0.5, 1.0], "fit_tokens": 20000, "max_cofire": 0.1}
STEPS = [10, 20, 30]
LAYER = 1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    model, tok = load_model(make_model(tmp_path_factory.mktemp("plant") / "base", 0))
    rng = random.Random(0)
    seqs = [[rng.randrange(4, tok.vocab_size) for _ in range(40)] for _ in range(200)]
    models, truth = plant.plant_series(model, tok, seqs, LAYER, CFG, STEPS, seed=0)
    return model, tok, seqs, models, truth


def _acts(model, seqs, pad):
    ids, lengths = pad_batch(seqs, pad)
    h = run_capture(model, ids, [LAYER])[LAYER]
    keep = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    return h[keep].double()


def test_series_names_and_ground_truth(world):
    _, _, _, models, truth = world
    assert sorted(models) == sorted(["base"] + [f"{r}-{s}" for r in ("sft", "rl") for s in STEPS])
    kinds = [f["kind"] for f in truth["features"]]
    assert kinds == ["base"] * 2 + ["sft"] * 3 + ["rl"]
    assert [f["strength"] for f in truth["features"]] == [0.5, 1.0, 0.5, 1.0, 0.5, 0.5]
    # removal is progressive and complete by the last checkpoint
    assert [f.get("removed_at_step") for f in truth["features"][:2]] == [20, 30]
    for f in truth["features"]:
        assert 0.5 * CFG["density"] < f["fire_rate"] < 2 * CFG["density"]


def test_differences_are_exactly_the_planted_writes(world):
    model, tok, seqs, models, truth = world
    pad = tok.pad_token_id
    base = _acts(models["base"], seqs[:40], pad)
    for name in ("sft-30", "rl-10"):
        diff = _acts(models[name], seqs[:40], pad) - base
        d = (truth["directions"][name] - truth["directions"]["base"]).double()
        span = torch.linalg.qr(d[d.norm(dim=1) > 0].T)[0]
        outside = diff - diff @ span @ span.T
        assert diff.norm() > 1.0
        assert outside.norm() / diff.norm() < 1e-4
    # slots are inert where nothing writes: the padded base without base writes is the original model
    silent = plant.pad_model(model, len(truth["features"]))
    assert torch.allclose(_acts(silent, seqs[:20], pad), _acts(model, seqs[:20], pad), atol=1e-5)


def test_rl_directions_rotate_by_the_configured_angle(world):
    *_, truth = world
    rl = [truth["directions"][f"rl-{s}"][-1].double() for s in STEPS]
    for a, b in zip(rl, rl[1:]):
        assert math.isclose(float(a @ b), math.cos(math.radians(CFG["rotation_deg"])), abs_tol=1e-6)
    sft = [truth["directions"][f"sft-{s}"][2:5] for s in STEPS]
    assert all(torch.equal(sft[0], s) for s in sft)


def test_too_many_features_for_the_width_is_a_clear_error():
    with pytest.raises(ValueError, match="do not fit d_model 8"):
        plant.directions(8, 9, torch.Generator().manual_seed(0))


def test_detector_fires_at_the_density_on_its_own_fit():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 16, dtype=torch.float64, generator=gen) + 3.0  # a constant part, as residuals have
    det = plant.detectors(x, x.norm(dim=1), 4, 0.02, torch.ones(4, dtype=torch.float64), gen)
    assert det["readout_std"] < 0.5
    assert np.allclose(det["fire_rate"].numpy(), 0.02, atol=0.01)


def test_detectors_that_fire_together_are_drawn_again():
    """Where the constant read-out b . x is small, every detector's bar is low, so random detectors
    share those tokens (on the tiny base: up to 52% of one's firing tokens); the redraw keeps the
    overlap of any two under max_cofire."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12000, 16, dtype=torch.float64, generator=gen) + 3.0
    x[::40] -= 2.0
    args = (x, x.norm(dim=1), 5, 0.02, torch.ones(5, dtype=torch.float64))
    loose = plant.detectors(*args, torch.Generator().manual_seed(1), max_cofire=1.0)
    strict = plant.detectors(*args, torch.Generator().manual_seed(1), max_cofire=0.08)
    assert float(loose["co_firing"].max()) > 0.1
    assert float(strict["co_firing"].max()) <= 0.08
    assert np.allclose(strict["fire_rate"].numpy(), 0.02, atol=0.005)


def test_a_capped_pair_is_bounded_and_never_writes_against_its_direction_where_the_readout_is_negative():
    """A single slot silu(z) c opens its gate where c = b . x < 0 and writes minus its direction,
    unboundedly (the tiny base: -258 x the mean residual norm); the capped pair writes there at most
    cap c², never against its direction, and never more than cap c where it fires."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 16, dtype=torch.float64, generator=gen) + 3.0
    x[::100] *= -0.2  # a few tokens with c < 0 that no read-out can lift: the negatives of others
    det = plant.detectors(x, x.norm(dim=1), 4, 0.02, torch.ones(4, dtype=torch.float64), gen)
    b, _ = plant.constant_readout(x)
    c = x @ b
    assert (c < 0).sum() >= 150
    for j in range(4):
        pair = {k: det[k][j] for k in ("gate", "up", "sign")}
        z = x @ pair["gate"][0]
        single = torch.nn.functional.silu(z) * c
        a = plant.activation(pair, x)
        cap = float((pair["gate"][0] - pair["gate"][1]) @ b / (b @ b))
        neg = c < 0
        on = (z > 0) & ~neg
        # what the pair is for: here a single slot writes down to -0.6 x its mean firing write where c < 0
        assert float(single[neg].min()) < -0.3 * float(single[on].mean())
        assert float(a[neg].min()) >= 0 and bool((a[neg] <= 1.1 * cap * c[neg] ** 2).all())  # silu' <= 1.1
        assert float(a[on].max()) <= cap * float(c[on].max()) + 1e-9
        assert float(det["off_mass"][j]) < 0.5


def test_the_constant_readout_lifts_tokens_below_its_floor_and_is_least_squares_elsewhere():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 16, dtype=torch.float64, generator=gen) + 3.0
    gram = x.T @ x / len(x)
    plain = torch.linalg.solve(gram + 1e-4 * gram.trace() / 16 * torch.eye(16, dtype=x.dtype), x.mean(0))
    assert torch.equal(plant.constant_readout(x)[0], plain)  # every token clears the floor: b unchanged
    # 2% of tokens without the common part, on a dimension that is noise elsewhere: least squares leaves them near 0
    x[:, 15] = 3.0 * torch.randn(len(x), dtype=x.dtype, generator=gen)
    x[::50, :15] -= 3.0
    x[::50, 15] = 3.0
    low = lambda b: float(((x @ b) < 0.25).double().mean())
    gram = x.T @ x / len(x)
    plain = torch.linalg.solve(gram + 1e-4 * gram.trace() / 16 * torch.eye(16, dtype=x.dtype), x.mean(0))
    b, _ = plant.constant_readout(x)
    assert low(plain) > 0.019 and low(b) < 0.85 * low(plain)  # 1.99% -> 1.61% here (tiny base: c < 0 0.75% -> 0.07%)
    assert float((x[::50] @ b).mean()) > float((x[::50] @ plain).mean()) + 0.05
