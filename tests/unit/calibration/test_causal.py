"""calibration.causal: the planted causal slot answers the cue task in the RL-like model only."""

from __future__ import annotations

import random

import pytest
import torch

from featdrift.calibration import causal, plant
from featdrift.models.load import load_model
from featdrift.tasks.registry import draw_unique

from helpers.acts import make_model

CFG = {"n_base": 1, "n_removed": 0, "n_sft": 1, "n_rl": 1, "rotation_deg": 60, "density": 0.05, "strength": [1.0],
       "fit_tokens": 20000, "max_cofire": 0.1,
       "causal": {"task": "cue", "ratio": 4.0, "accuracy": 0.95, "fire": 0.9, "fit_items": 32, "strength": 2.0}}
LAYER = 1


def _items(seed: int) -> list[dict]:
    """Cue items with a wrong answer as long as the right one: an untrained model prefers the
    shorter answer by several nats (each character costs about log(vocabulary)), which no write
    undoes; the trained bases of the workflow prefer "no" by 1.6 nats, which one does."""
    return [{**it, "choices": ["yes", "nop"]} for it in draw_unique("cue", seed, 32)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    model, tok = load_model(make_model(tmp_path_factory.mktemp("causal") / "base", 0))
    rng = random.Random(0)
    seqs = [[rng.randrange(4, tok.vocab_size) for _ in range(40)] for _ in range(200)]
    items = _items(0)
    models, truth = plant.plant_series(model, tok, seqs, LAYER, CFG, [10, 20], seed=0, sources=["generic"] * len(seqs),
                                       causal_items=items)
    return tok, items, models, truth


def _accuracy(model, tok, items) -> float:
    with torch.no_grad():
        return float((causal.margins(model, causal.choice_sequences(items, tok), tok.pad_token_id) > 0).double().mean())


def test_the_rl_like_series_answers_the_cue_task_and_the_base_does_not(world):
    tok, items, models, truth = world
    c = truth["features"][-1]
    assert c["kind"] == "causal" and c["train_accuracy"]["rl"] >= 0.95 and c["train_accuracy"]["base"] <= 0.05
    held_out = _items(1)  # items the write was not sized on
    assert _accuracy(models["rl-20"], tok, held_out) >= 0.9
    assert _accuracy(models["base"], tok, held_out) <= 0.1
    assert _accuracy(models["sft-20"], tok, held_out) <= 0.1


def test_the_causal_direction_is_apart_from_the_other_planted_ones(world):
    *_, truth = world
    dirs = truth["directions"]["rl-20"].double()
    others = torch.cat([truth["directions"][k] for k in truth["directions"]]).double()[:, :]
    u = dirs[-1]
    assert torch.isclose(u.norm(), torch.tensor(1.0, dtype=torch.float64))
    rest = others[(others.norm(dim=1) > 0) & ((others - u).norm(dim=1) > 1e-6)]
    assert (rest @ u).abs().max() < 1e-5
    # it writes in every model: shared, the RL-like series ratio-fold stronger
    assert all(torch.equal(truth["directions"][k][-1], dirs[-1]) for k in truth["directions"])


def test_the_slot_pair_saturates():
    x = torch.linspace(-5, 50, 200, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 0.0]], dtype=torch.float64) \
        + torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    slot = {"gate": torch.tensor([[1.0, 0.0], [1.0, -4.0]], dtype=torch.float64),
            "up": torch.tensor([[0.0, 1.0], [0.0, 1.0]], dtype=torch.float64), "sign": torch.tensor([1.0, -1.0])}
    a = causal.activation(slot, x)
    # silu dips to -0.28 below 0, so the difference overshoots K by at most that
    assert a.max() < 4.3 and a[-1] > 3.99 and a[0].abs() < 0.1


def test_a_task_no_write_can_flip_is_a_clear_error(world):
    tok, items, models, _ = world
    base = models["base"]
    x = torch.randn(500, base.config.hidden_size, dtype=torch.float64)
    cfg = {**CFG["causal"], "strength": 1e-3}
    with pytest.raises(ValueError, match="calibration.causal: no write up to strength 0.001"):
        causal.plant_causal(base, tok, items, x, x.norm(dim=1), LAYER, cfg, torch.zeros(0, base.config.hidden_size))
