"""Planted ground truth: model series whose feature changes are known by construction.

Every model of the calibration world is the base with 2K extra MLP neurons ("slots") in every
block, all inert except in block L, the dictionaries' layer. Feature j is a pair of slots of
block L that reads a detector of the block's MLP input x̂:

    a_j(x) = [silu(z) - silu(z - κ_j c)] c,   z = s_j (w_j - θ_j b) · x̂,   c = b · x̂

b is a least-squares constant read-out (c ≈ 1 on probe tokens: Llama MLPs have no bias), w_j a
random unit direction and θ_j the (1 - density) quantile of w_j·x̂ / c on the probe set, so the
slot fires on `density` of the tokens it was fitted on, on contexts that no base feature was built
for. The second slot caps the write at κ_j c (κ_j: the largest z where it fires on the fitted
tokens, so no fitted firing token is capped). What it is for are tokens where c < 0, which a small
base has (the tiny one: 0.75% of tokens): there a single slot's gate opens and it writes minus its
direction by up to hundreds of times the mean residual norm, while the pair writes at most κ_j c²,
of the sign it writes where it fires. Its down-projection columns ±α_j v_j write the known unit
direction v_j into the residual stream after block L, the very vector the dictionaries read.
Nothing before block L's MLP changes, so a_j(x) is the same in every model: a series differs
from the base only in which slots write, and in which direction. α_j sets the mean write on
firing tokens to a strength times the mean residual norm; with several strengths each kind of
feature cycles through them, so that recovery can be read per strength (the instruments'
sensitivity).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..models.hooks import block_hooks, decoder_layers

MLP = ("gate_proj", "up_proj", "down_proj")


def mlp_inputs(model, sequences: list[list[int]], layer: int, pad_id: int, batch_size: int = 32,
               max_tokens: int = 50_000) -> tuple[torch.Tensor, torch.Tensor]:
    """(MLP inputs x̂ of block `layer`, residual norms after it), one row per real probe token."""
    from ..activations.capture import pad_batch

    mlp = decoder_layers(model)[layer].mlp
    xs, norms, n = [], [], 0
    for i in range(0, len(sequences), batch_size):
        ids, lengths = pad_batch(sequences[i:i + batch_size], pad_id)
        keep = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        got = {}
        handle = mlp.register_forward_pre_hook(lambda _m, args: got.__setitem__("x", args[0].detach()))
        try:
            with block_hooks(model, {layer: lambda h: got.__setitem__("h", h.detach())}, stop_after=layer), \
                    torch.inference_mode():
                model(input_ids=ids, use_cache=False)
        finally:
            handle.remove()
        xs.append(got["x"][keep].double())
        norms.append(got["h"][keep].double().norm(dim=-1))
        n += int(keep.sum())
        if n >= max_tokens:
            break
    return torch.cat(xs), torch.cat(norms)


def constant_readout(x: torch.Tensor, ridge: float = 1e-4, floor: float = 0.25, weight: float = 100.0,
                     iterations: int = 50) -> tuple[torch.Tensor, float]:
    """b with x @ b ≈ 1 (ridge least squares) and the std of x @ b: a bias for bias-free MLPs.

    Tokens where c = b · x̂ is near 0 or negative are where a slot's write cannot be kept to its
    firing tokens (`capped_pair`), so c is pushed to `floor` or more on the fitted tokens: a squared
    penalty (`weight`) on the tokens below it, refitted until that set stops growing. Where least
    squares clears the floor (the embedded default's base: min 0.47) b is the plain fit."""
    d = x.shape[1]
    gram = x.T @ x / len(x)
    reg = ridge * gram.trace() / d * torch.eye(d, dtype=x.dtype)
    b = torch.linalg.solve(gram + reg, x.mean(0))
    low = (x @ b) < floor
    for _ in range(iterations):
        if not low.any():
            break
        xl = x[low]
        b = torch.linalg.solve(gram + reg + weight * xl.T @ xl / len(x),
                               x.mean(0) + weight * floor * xl.sum(0) / len(x))
        now = low | ((x @ b) < floor)
        if torch.equal(now, low):
            break
        low = now
    return b, float((x @ b).std())


def activation(slot: dict, x: torch.Tensor) -> torch.Tensor:
    """Slots' summed activation on MLP inputs x (..., d): sum_i sign_i silu(gate_i · x̂)(up_i · x̂)."""
    g, up, sign = (slot[k].to(x.dtype) for k in ("gate", "up", "sign"))
    return (torch.nn.functional.silu(x @ g.T) * (x @ up.T) * sign).sum(-1)


def capped_pair(gate: torch.Tensor, b: torch.Tensor, cap: float) -> dict:
    """The pair silu(z) c - silu(z - cap c) c of gate row `gate` (z = gate · x̂, c = b · x̂): at most
    about cap c where z is large, and at most cap c² (not minus the unbounded silu(z) |c|) where c < 0."""
    return {"gate": torch.stack([gate, gate - cap * b]), "up": torch.stack([b, b]),
            "sign": torch.tensor([1.0, -1.0], dtype=gate.dtype)}


def directions(d: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """n orthonormal random directions in R^d (rows)."""
    if n > d:
        raise ValueError(f"calibration: {n} planted directions do not fit d_model {d}; plant fewer features")
    q, _ = torch.linalg.qr(torch.randn(d, n, generator=gen, dtype=torch.float64))
    return q.T.contiguous()


def co_firing(firing: torch.Tensor) -> torch.Tensor:
    """(n, n): |F_i and F_j| / min(|F_i|, |F_j|) of the (tokens, n) firing sets; 0 on the diagonal."""
    f = firing.double()
    both = f.T @ f
    size = f.sum(0)
    out = both / torch.minimum(size[:, None], size[None, :]).clamp_min(1)
    return out.fill_diagonal_(0)


def _overlap(accepted: torch.Tensor, sizes: torch.Tensor, fire: torch.Tensor) -> float:
    """max_j |F_j and F| / min(|F_j|, |F|) over the accepted firing sets (columns of `accepted`,
    float64, with their `sizes`): co_firing's last row, from exact counts, so the same value."""
    if not accepted.shape[1]:
        return 0.0
    g = fire.double()
    return float(((g @ accepted) / torch.minimum(sizes, g.sum()).clamp_min(1)).max())


def detectors(x: torch.Tensor, norms: torch.Tensor, n: int, density: float, strength: torch.Tensor,
              gen: torch.Generator, sharpness: float = 16.0, max_cofire: float = 0.1, tries: int = 200) -> dict:
    """n detectors on MLP inputs `x`: each a capped pair of slots (gate, up and sign rows, (n, 2, d)
    and (n, 2)), write scale α (for `strength`, one per detector), and their measured firing.

    Detectors are drawn one at a time, each direction orthogonal to the accepted ones, and one
    that shares more than `max_cofire` of its firing tokens with an accepted detector is drawn
    again (up to `tries` times; then the least overlapping draw is kept). Random thresholds of a
    small model's inputs tend to fire on the same few contexts, and features that fire together
    are one feature to any dictionary: the plant would then hide its own ground truth. So is one that
    fires on less than half of `density` (its threshold inside a block of identical inputs).
    A detector fires where z > 0 and c > 0; `off_mass` is its |write| elsewhere over its write there."""
    if n > x.shape[1]:
        raise ValueError(f"calibration: {n} planted detectors do not fit d_model {x.shape[1]}; plant fewer features")
    b, b_std = constant_readout(x)
    c = x @ b  # (tokens,): c ~ 1
    pos = c > 0
    ws, pairs, thetas, fires = [], [], [], []
    accepted, sizes = x.new_zeros(len(x), 0), x.new_zeros(0)
    for _ in range(n):
        best = None
        for _ in range(tries):
            w = torch.randn(x.shape[1], dtype=torch.float64, generator=gen)
            for u in ws:
                w -= (w @ u) * u
            w /= w.norm()
            z = x @ w
            # theta: the (1 - density) quantile of z / c, so that z > theta c on `density` of the tokens
            # exactly, however far c strays from 1 (tokens with c <= 0 never fire: they are left out).
            theta = torch.quantile(z[pos] / c[pos], 1.0 - density)
            gate = (sharpness / z.std()) * (w - theta * b)
            zg = x @ gate
            # ties at the threshold (z ~ 1e-14: repeated identical inputs, e.g. a sequence's first token) do not fire
            fire = (zg > 1e-6) & pos
            # a threshold inside a block of identical inputs fires on a few tokens only (tiny base, plant seed 4:
            # 16 of 20,000): no dictionary resolves that, so it is drawn again like a co-firing one
            sparse = bool(fire.double().mean() < 0.5 * density)
            overlap = _overlap(accepted, sizes, fire)
            if best is None or (sparse, overlap) < best[0]:
                best = ((sparse, overlap), w, gate, zg, theta, fire)
            if not sparse and overlap <= max_cofire:
                break
        _, w, gate, zg, theta, fire = best
        if not fire.any():
            raise ValueError(f"calibration: planted detector {len(ws)} fires on none of the {len(x)} fitted tokens; "
                             "raise calibration.density or calibration.fit_tokens")
        ws.append(w)
        pairs.append(capped_pair(gate, b, float(zg[fire].max())))  # no fitted firing token is capped
        thetas.append(theta)
        fires.append(fire)
        accepted = torch.cat([accepted, fire.double()[:, None]], 1)
        sizes = accepted.sum(0)
    act = torch.stack([activation(p, x) for p in pairs], 1)
    firing = torch.stack(fires, 1)
    mean_on = torch.stack([act[firing[:, j], j].mean() for j in range(n)])
    off = torch.stack([act[~firing[:, j], j].abs().sum() / act[firing[:, j], j].sum() for j in range(n)])
    alpha = strength * norms.mean() / mean_on
    return {"gate": torch.stack([p["gate"] for p in pairs]), "up": torch.stack([p["up"] for p in pairs]),
            "sign": torch.stack([p["sign"] for p in pairs]), "alpha": alpha, "readout_std": b_std,
            "fire_rate": firing.double().mean(0), "theta": torch.stack(thetas), "off_mass": off,
            "co_firing": co_firing(firing).max(1).values}


def pad_model(model, k: int):
    """A copy of `model` with k inert (all-zero) MLP neurons appended in every block."""
    from transformers import AutoModelForCausalLM

    blocks = decoder_layers(model)
    mlp = blocks[0].mlp
    if not all(hasattr(mlp, p) for p in MLP):
        raise ValueError(f"calibration: plants into gated MLPs ({', '.join(MLP)}); "
                         f"{type(model).__name__} has {type(mlp).__name__}")
    cfg = model.config.__class__.from_dict(model.config.to_dict())
    cfg.intermediate_size = model.config.intermediate_size + k
    new = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
    state = model.state_dict()
    for name, t in list(state.items()):
        if name.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight")):
            state[name] = torch.cat([t, t.new_zeros(k, t.shape[1])], dim=0)
        elif name.endswith("mlp.down_proj.weight"):
            state[name] = torch.cat([t, t.new_zeros(t.shape[0], k)], dim=1)
    new.load_state_dict(state, strict=True)
    new.eval()
    return new


def set_slots(model, layer: int, first: int, gate: torch.Tensor, up: torch.Tensor, write: torch.Tensor) -> None:
    """Slots first.. of block `layer`: gate and up rows (n, d), down columns `write` (n, d)."""
    mlp = decoder_layers(model)[layer].mlp
    n = gate.shape[0]
    with torch.no_grad():
        mlp.gate_proj.weight[first:first + n] = gate.to(mlp.gate_proj.weight.dtype)
        mlp.up_proj.weight[first:first + n] = up.to(mlp.up_proj.weight.dtype)
        mlp.down_proj.weight[:, first:first + n] = write.T.to(mlp.down_proj.weight.dtype)


def schedule(n_base: int, n_removed: int, n_sft: int, n_rl: int, n_checkpoints: int, rotation_deg: float,
             gen: torch.Generator, d: int, strengths: list[float] = (1.0,)) -> tuple[list[dict], dict]:
    """The planted features and, per model name, the unit write direction of each (zero = silent).

    base: base features write in every model except where SFT removes them; sft: the SFT-like
    series writes n_sft features from its first checkpoint on and holds them, and removes
    n_removed base features progressively (all by its last checkpoint); rl: the RL-like series
    writes n_rl features from its first checkpoint, each rotating in a fixed plane by
    rotation_deg from one checkpoint to the next, so they keep moving.
    Returns (features, {model_key: (n_features, d) directions}) with model keys "base",
    "sft-<i>", "rl-<i>" for checkpoint index i = 1..n.
    """
    if n_removed > n_base:
        raise ValueError(f"calibration.n_removed: {n_removed} is more than calibration.n_base {n_base}")
    n_feat = n_base + n_sft + n_rl
    dirs = directions(d, n_base + n_sft + 2 * n_rl, gen)
    feats = ([{"kind": "base", "removed_at": None} for _ in range(n_base)]
             + [{"kind": "sft"} for _ in range(n_sft)] + [{"kind": "rl"} for _ in range(n_rl)])
    for j in range(n_removed):  # removal index: the checkpoint from which feature j is gone
        feats[j]["removed_at"] = max(1, math.ceil((j + 1) * n_checkpoints / n_removed))
    for j, f in enumerate(feats):
        f["feature"] = j
        f["strength"] = strengths[sum(g["kind"] == f["kind"] for g in feats[:j]) % len(strengths)]
    p, q = dirs[n_base + n_sft: n_base + n_sft + n_rl], dirs[n_base + n_sft + n_rl:]
    out = {}
    base = torch.zeros(n_feat, d, dtype=torch.float64)
    base[:n_base] = dirs[:n_base]
    out["base"] = base
    for i in range(1, n_checkpoints + 1):
        sft = base.clone()
        for f in feats[:n_base]:
            if f["removed_at"] is not None and i >= f["removed_at"]:
                sft[f["feature"]] = 0
        sft[n_base:n_base + n_sft] = dirs[n_base:n_base + n_sft]
        out[f"sft-{i}"] = sft
        rl = base.clone()
        phi = math.radians(rotation_deg) * i
        rl[n_base + n_sft:] = math.cos(phi) * p + math.sin(phi) * q
        out[f"rl-{i}"] = rl
    return feats, out


def plant_series(model, tok, sequences: list[list[int]], layer: int, cfg: dict, steps: list[int], seed: int,
                 sources: list[str] | None = None, causal_items: list[dict] | None = None) -> tuple:
    """(models {name: model}, ground truth {features, directions, measured}) of the calibration world.

    `steps` are the checkpoint steps of both runs; model names follow the workflow's
    ("base", "sft-<step>", "rl-<step>"). With cfg["causal"], `causal_items` (the cue task's training
    items) and `sources` (each probe sequence's task) plant the causal feature (calibration.causal)
    as the last one.
    """
    gen = torch.Generator().manual_seed(seed)
    d = model.config.hidden_size
    strengths = cfg["strength"] if isinstance(cfg["strength"], (list, tuple)) else [cfg["strength"]]
    feats, dirs = schedule(cfg["n_base"], cfg["n_removed"], cfg["n_sft"], cfg["n_rl"], len(steps),
                           cfg["rotation_deg"], gen, d, list(strengths))
    n = len(feats)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    x, norms = mlp_inputs(model, sequences, layer, pad_id, max_tokens=cfg["fit_tokens"])
    det = detectors(x, norms, n, cfg["density"], torch.tensor([f["strength"] for f in feats], dtype=torch.float64), gen,
                    max_cofire=cfg["max_cofire"])
    first = model.config.intermediate_size
    names = {"base": "base", **{f"{r}-{i}": f"{r}-{s}" for r in ("sft", "rl") for i, s in enumerate(steps, 1)}}
    cause = None
    if cfg.get("causal"):
        from .causal import plant_causal

        task = cfg["causal"]["task"]
        rows = np.repeat([s != task for s in sources], [len(q) for q in sequences])[:len(x)]
        planted = torch.cat([dirs["base"], *(dirs[k] for k in names if k != "base")])
        cause = plant_causal(model, tok, causal_items, x[torch.from_numpy(rows)], norms, layer, cfg["causal"],
                             planted[planted.norm(dim=1) > 0])
    models, truth = {}, {}
    for key, name in names.items():
        m = pad_model(model, 2 * n + (2 if cause is not None else 0))
        write = (det["sign"][..., None] * (det["alpha"][:, None] * dirs[key])[:, None]).reshape(2 * n, d)
        set_slots(m, layer, first, det["gate"].reshape(2 * n, d), det["up"].reshape(2 * n, d), write)
        unit = dirs[key]
        if cause is not None:  # a pair of slots: the second takes back what exceeds the first's saturation
            t = cause["t_rl"] if key.startswith("rl-") else cause["t_base"]
            set_slots(m, layer, first + 2 * n, cause["gate"], cause["up"],
                      cause["sign"][:, None] * t * cause["direction"])
            unit = torch.cat([unit, cause["direction"][None]])
        models[name] = m
        truth[name] = unit.float()
    for f in feats:
        j = f["feature"]
        f.update({"slot": [first + 2 * j, first + 2 * j + 1], "fire_rate": float(det["fire_rate"][j]),
                  "alpha": float(det["alpha"][j]), "theta": float(det["theta"][j]),
                  "max_co_firing": float(det["co_firing"][j]), "off_mass": float(det["off_mass"][j])})
        if f.get("removed_at") is not None:
            f["removed_at_step"] = steps[f.pop("removed_at") - 1]
        else:
            f.pop("removed_at", None)
    if cause is not None:
        feats.append({"feature": n, "kind": "causal", "slot": [first + 2 * n, first + 2 * n + 1],
                      **cause["measured"]})
    measured = {"fit_tokens": int(len(x)), "readout_std": det["readout_std"],
                "mean_residual_norm": float(norms.mean()), "fire_rate_mean": float(det["fire_rate"].mean()),
                "max_co_firing": float(det["co_firing"].max()) if n else 0.0,
                "max_off_mass": float(det["off_mass"].max()) if n else 0.0}
    return models, {"layer": layer, "d_model": d, "features": feats, "directions": truth, "measured": measured}


def write_series(models: dict, tok, truth: dict, out_dirs: dict, truth_json, truth_tensors) -> None:
    """Each model to its directory (safetensors + tokenizer), the ground truth beside them."""
    from safetensors.torch import save_file

    from ..io import atomic_dir, atomic_path, write_json

    for name, m in models.items():
        with atomic_dir(out_dirs[name]) as tmp:
            m.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    with atomic_path(truth_tensors) as tmp:
        save_file({k: v.contiguous() for k, v in truth["directions"].items()}, str(tmp))
    meta = {k: v for k, v in truth.items() if k != "directions"}
    write_json(truth_json, meta)


def np_directions(path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))
