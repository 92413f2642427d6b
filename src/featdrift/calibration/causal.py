"""The planted causal feature: one slot that the RL-like series needs to answer the cue task.

The slot is built like the other planted features (calibration.plant), with two differences:
its detector is fitted to fire on the cue task's tokens (a linear discriminant of the MLP
inputs x̂ of cue items against the rest of the probe), and its write direction is the one
that moves the answer: the gradient, at no write, of the mean log-likelihood margin of the
correct choice over the wrong one, taken through the blocks after the layer and kept
orthogonal to the other planted directions. The write's size t is the smallest on a grid at
which the edited model answers `accuracy` of the task's training items right; the RL-like
series writes t, the base and the SFT-like series t / ratio. So the feature is shared and RL
strengthens it, disabling it in RL undoes RL's answers, and amplifying it ratio-fold in the
base (intervene.alphas) restores them: the effects the mediation stage must find.
"""

from __future__ import annotations

import math

import torch

from ..models.hooks import decoder_layers
from .plant import activation, capped_pair, constant_readout, mlp_inputs


def choice_sequences(items: list[dict], tok) -> list[tuple[list[int], int, int]]:
    """Per item and choice: (token ids of question + " " + choice, context length, 1 if correct),
    split as lm-eval splits a multiple-choice request (the context encoded alone)."""
    out = []
    for it in items:
        ctx = tok(it["question"], add_special_tokens=False)["input_ids"]
        for k, choice in enumerate(it["choices"]):
            whole = tok(it["question"] + " " + choice, add_special_tokens=False)["input_ids"]
            out.append((whole, len(ctx), int(k == int(it["label"]))))
    return out


class SlotEdit:
    """Adds a(x̂) u to block `layer`'s MLP output, a(x̂) = sum_i sign_i silu(gate_i · x̂)(up_i · x̂): the
    slots as a hook, so that their write u can be differentiated before any weight is set."""

    def __init__(self, model, layer: int, slot: dict, u: torch.Tensor):
        self.mlp = decoder_layers(model)[layer].mlp
        self.slot, self.u = slot, u

    def __enter__(self):
        state = {}

        def pre(_m, args):
            state["a"] = activation(self.slot, args[0].float())

        def post(_m, _args, output):
            return output + (state.pop("a")[..., None] * self.u).to(output.dtype)

        self.handles = [self.mlp.register_forward_pre_hook(pre), self.mlp.register_forward_hook(post)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def margins(model, seqs: list[tuple[list[int], int, int]], pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """Per item: log-likelihood of the correct continuation minus the best wrong one's (choices of
    an item are consecutive in `seqs`)."""
    from ..activations.capture import pad_batch

    ll = []
    for b in range(0, len(seqs), batch_size):
        part = seqs[b:b + batch_size]
        ids, lengths = pad_batch([s for s, _, _ in part], pad_id)
        logp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), -1)
        tok_ll = logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]  # log p(token t+1 | tokens <= t)
        pos = torch.arange(1, ids.shape[1])[None, :]
        start = torch.tensor([n_ctx for _, n_ctx, _ in part])[:, None]
        ll.append((tok_ll * ((pos >= start) & (pos < lengths[:, None]))).sum(1))
    ll = torch.cat(ll)
    correct = torch.tensor([c for _, _, c in seqs], dtype=torch.bool)
    n_items = int(correct.sum())
    return ll[correct] - ll[~correct].view(n_items, -1).max(1).values


def fit_detector(x_pos: torch.Tensor, x_neg: torch.Tensor, fire: float, sharpness: float = 16.0,
                 saturation: float = 4.0) -> dict:
    """A pair of slots that fires on `fire` of the positive tokens: the linear discriminant w of
    positives against negatives, thresholded as the other detectors are, and a second slot that
    subtracts what exceeds `saturation`. A single silu grows without bound on outlying tokens (the
    first position's residual is tens of times the others'): a write that big would be a feature
    of its own to a dictionary, and saturate the answer."""
    x = torch.cat([x_pos, x_neg])
    b, _ = constant_readout(x)
    d = x.shape[1]
    cov = torch.cov(torch.cat([x_pos - x_pos.mean(0), x_neg - x_neg.mean(0)]).T)
    w = torch.linalg.solve(cov + 1e-3 * cov.trace() / d * torch.eye(d, dtype=x.dtype), x_pos.mean(0) - x_neg.mean(0))
    w /= w.norm()
    c_pos = x_pos @ b
    ok = c_pos > 0
    theta = torch.quantile((x_pos @ w)[ok] / c_pos[ok], 1.0 - fire)
    gate = (sharpness / (x @ w).std()) * (w - theta * b)
    slot = capped_pair(gate, b, saturation)
    on_pos, on_neg = x_pos @ gate > 0, x_neg @ gate > 0
    return {**slot, "fire_task": float(on_pos.double().mean()), "fire_rest": float(on_neg.double().mean()),
            "mean_on": float(activation(slot, x_pos)[on_pos].mean())}


def _orthonormal(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """v minus its part in span(basis rows), normalized: the planted directions stay apart."""
    if len(basis):
        q, _ = torch.linalg.qr(basis.T.double())
        v = v - q @ (q.T @ v)
    return v / v.norm()


def plant_causal(model, tok, items: list[dict], x_rest: torch.Tensor, norms: torch.Tensor, layer: int, cfg: dict,
                 avoid: torch.Tensor) -> dict:
    """The causal slot: gate and up rows, the unit write direction and the RL-like and base write sizes.

    `x_rest`: MLP inputs of probe tokens outside the task; `avoid`: (n, d) directions the write
    must be orthogonal to (the other planted features).

    The write's size is the largest on a grid (up to cfg["strength"] x the mean residual norm, on
    average over the tokens it fires on) at which the RL-like write gets `accuracy` of the training
    items right and the base's (1 / ratio of it) at most 1 - `accuracy`: the largest is the easiest
    for a dictionary to resolve. The range is narrow where the layer is the last block: a write that
    dominates the residual decides the answer whatever its size (the final norm divides it out)."""
    model.requires_grad_(False)  # only the write is differentiated
    items = items[:cfg["fit_items"]]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    texts = [tok(it["question"] + " " + c, add_special_tokens=False)["input_ids"] for it in items for c in it["choices"]]
    # the detector is fitted on each item's second half, where the answer is decided: the first
    # tokens ("Sig...") look like any text's
    x_all, _ = mlp_inputs(model, texts, layer, pad_id, max_tokens=10**9)
    tail = torch.cat([torch.arange(len(t)) >= len(t) // 2 for t in texts])
    det = fit_detector(x_all[tail], x_rest, cfg["fire"])
    seqs = choice_sequences(items, tok)
    u0 = torch.zeros(model.config.hidden_size, requires_grad=True)
    with SlotEdit(model, layer, det, u0):
        m0 = margins(model, seqs, pad_id)
        m0.mean().backward()
    direction = _orthonormal(u0.grad.double(), avoid)
    unit = float(norms.mean()) / det["mean_on"]  # write norm per unit of strength
    grid = torch.logspace(-2, math.log10(cfg["strength"]), 41, dtype=torch.float64).tolist()
    acc = {}
    with torch.no_grad():
        for strength in grid + [s / cfg["ratio"] for s in grid]:
            if strength not in acc:
                with SlotEdit(model, layer, det, (strength * unit * direction).float()):
                    acc[strength] = float((margins(model, seqs, pad_id) > 0).double().mean())
    ok = [s for s in grid if acc[s] >= cfg["accuracy"] and acc[s / cfg["ratio"]] <= 1 - cfg["accuracy"]]
    if not ok:
        raise ValueError(f"calibration.causal: no write up to strength {cfg['strength']} makes the RL-like model "
                         f"answer {cfg['task']!r} right on {cfg['accuracy']:.0%} of its training items while the base's, "
                         f"{cfg['ratio']:g}-fold weaker, leaves it wrong (best: {max(acc.values()):.0%}); "
                         "change calibration.causal.ratio or .accuracy")
    strength = math.sqrt(ok[0] * ok[-1])  # the middle of the range, on the grid's log scale
    strength = min(ok, key=lambda s: abs(math.log(s / strength)))
    return {"gate": det["gate"], "up": det["up"], "sign": det["sign"], "direction": direction, "t_rl": strength * unit,
            "t_base": strength * unit / cfg["ratio"],
            "measured": {"task": cfg["task"], "ratio": cfg["ratio"], "fire_task": det["fire_task"],
                         "fire_rest": det["fire_rest"], "strength": strength, "strengths_feasible": [ok[0], ok[-1]],
                         "train_accuracy": {"unplanted": float((m0 > 0).double().mean()),
                                            "base": acc[strength / cfg["ratio"]], "rl": acc[strength]}}}
