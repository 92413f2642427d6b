"""The TopK architecture's sparse training step computes what the dense one does, forward and backward."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from featdrift.activations.store import ActivationStore
from featdrift.dictionaries.arch import get
from featdrift.dictionaries.arch.topk import (DenseTopKTraining, TopKTraining, encoder_grad, select_topk,
                                              sparse_decode, topk_code, topk_parts)
from featdrift.dictionaries.model import Dictionary
from featdrift.dictionaries.settings import DictionaryConfig
from featdrift.dictionaries.train import init_dictionary, train_dictionary

from helpers.acts import sparse_data, write_synthetic_shards


def test_sparse_decode_equals_the_dense_matmul_and_its_gradients():
    g = torch.Generator().manual_seed(0)
    B, n, D, k = 64, 300, 24, 7
    pre0, W0, b0 = torch.randn(B, n, generator=g), torch.randn(n, D, generator=g), torch.randn(D, generator=g)
    grads = []
    for sparse in (False, True):
        pre, W, b = (t.clone().requires_grad_(True) for t in (pre0, W0, b0))
        if sparse:
            vals, idx = topk_parts(pre, k)
            xhat = sparse_decode(vals, idx, W, b)
        else:
            xhat = torch.addmm(b, topk_code(pre, k), W)
        xhat.pow(2).sum().backward()
        grads.append((xhat.detach(), pre.grad, W.grad, b.grad))
    for dense, sparse in zip(*grads):
        torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-5)
    assert int((grads[1][2].abs().sum(1) > 0).sum()) < n  # silent latents' decoder rows get no gradient


def test_topk_code_keeps_k_latents_per_row_and_drops_negatives():
    pre = torch.tensor([[3.0, -1.0, 2.0, 0.5], [-2.0, -1.0, -3.0, 4.0]])
    assert torch.equal(topk_code(pre, 2), torch.tensor([[3.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 4.0]]))


def test_select_topk_in_chunks_equals_the_top_k_of_the_whole_pre_activation():
    g = torch.Generator().manual_seed(1)
    B, D, n, k, aux_k = 50, 12, 40, 5, 7
    xs, W, b = torch.randn(B, D, generator=g), torch.randn(D, n, generator=g), torch.randn(n, generator=g)
    dead = torch.rand(n, generator=g) < 0.5
    pre = torch.addmm(b, xs, W)
    for chunk in (1, 3 * n + 1, B * n):  # one row per chunk, a ragged last chunk, one chunk
        sel = select_topk(xs, W, b, k, dead, aux_k, chunk=chunk)
        assert torch.equal(sel.idx.sort(-1).values, pre.topk(k, dim=-1).indices.sort(-1).values)
        torch.testing.assert_close(sel.top, pre.gather(1, sel.idx), rtol=1e-6, atol=1e-6)
        ids = dead.nonzero().squeeze(1)
        want = ids[pre[:, ids].topk(aux_k, dim=-1).indices]
        assert torch.equal(sel.aux_idx.sort(-1).values, want.sort(-1).values)
        assert bool(dead[sel.aux_idx].all())
        torch.testing.assert_close(sel.aux_top, pre.gather(1, sel.aux_idx), rtol=1e-6, atol=1e-6)
    few = torch.zeros(n, dtype=torch.bool)
    few[[3, 9]] = True  # fewer dead latents than aux_k: all of them
    assert sorted(select_topk(xs, W, b, k, few, aux_k).aux_idx[0].tolist()) == [3, 9]
    assert select_topk(xs, W, b, k).aux_idx is None


def test_encoder_grad_is_x_transposed_times_the_scattered_gradient():
    g = torch.Generator().manual_seed(2)
    B, D, n, k = 30, 8, 25, 4
    xs, gv = torch.randn(B, D, generator=g), torch.randn(B, k, generator=g)
    idx = torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(B)])
    S = torch.zeros(B, n).scatter(1, idx, gv)
    torch.testing.assert_close(encoder_grad(xs, gv, idx, n), xs.T @ S, rtol=1e-5, atol=1e-5)


def _one_step(training, M, dead_frac):
    """Loss, aux, code stats and parameter gradients of one training step of `training` (the
    trainer's order of hooks), on a fixed dictionary, batch and dead mask."""
    g = torch.Generator().manual_seed(3)
    d, n, k, B = 6, 48, 4, 40
    D = Dictionary(M, d, n, "topk", k)
    init_dictionary(D, torch.randn(64, M, d, generator=g), g)
    with torch.no_grad():
        D.b_enc.normal_(0, 0.3, generator=g)
    cfg = SimpleNamespace(aux_coeff=0.5, aux_k=6)
    run = training(D, cfg, 10)
    xs = torch.randn(B, M * d, generator=g)
    dead = torch.rand(n, generator=g) < dead_frac
    W_enc, b_enc, b_dec = D.W_enc.view(M * d, n), D.b_enc, D.b_dec.view(M * d)
    W_dec = D.W_dec.transpose(0, 1).reshape(n, M * d)
    pre = run.encode(0, xs, W_enc, b_enc, dead)
    f = run.activate(0, pre)
    xhat = run.decode(0, f, W_dec, b_dec)
    extra, aux = run.loss(0, pre, f, xs, xhat, W_dec, dead)
    loss = torch.nn.functional.mse_loss(xhat, xs, reduction="sum") / B + extra
    loss.backward()
    grads = [getattr(D, t).grad for t in ("W_enc", "b_enc", "W_dec", "b_dec")]
    return [loss.detach(), aux.detach(), xhat.detach(), *grads], run.fired(f), run.l0(f)


@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("dead_frac", [0.0, 0.1, 0.6])  # no AuxK; fewer dead latents than aux_k; more
def test_sparse_step_equals_the_dense_step_and_its_gradients(M, dead_frac):
    dense, fired_d, l0_d = _one_step(DenseTopKTraining, M, dead_frac)
    sparse, fired_s, l0_s = _one_step(TopKTraining, M, dead_frac)
    assert (float(dense[1]) > 0) == (dead_frac > 0)  # AuxK ran where latents are dead
    for want, got in zip(dense, sparse):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert torch.equal(fired_s, fired_d) and l0_s == l0_d  # from the indices: exactly the dense code's


def test_sparse_training_is_deterministic_and_tracks_the_dense_training(tmp_path, dict_section, monkeypatch):
    xs, _ = sparse_data(6000, 16, 32, 3, n_models=2, seed=0)
    shards = write_synthetic_shards(tmp_path, xs, ["base", "sft-1"])
    cfg = DictionaryConfig.from_config(dict_section(arch="topk", tokens=8000, dead_tokens=600))
    runs = [train_dictionary(ActivationStore(shards), ["base", "sft-1"], cfg, seed=0, threads=1) for _ in range(2)]
    for t in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(runs[0][0], t), getattr(runs[1][0], t)), t
    assert runs[0][1] == runs[1][1]
    assert any(r["aux"] > 0 for r in runs[0][1])  # dead latents occurred: the sparse AuxK path ran
    monkeypatch.setattr(get("topk"), "training", DenseTopKTraining)
    D, curve = train_dictionary(ActivationStore(shards), ["base", "sft-1"], cfg, seed=0, threads=1)
    for a, b in zip(runs[0][1], curve):
        assert a["step"] == b["step"] and a["l0"] == pytest.approx(b["l0"], abs=0.05)
        assert a["fvu"] == pytest.approx(b["fvu"], rel=1e-3, abs=1e-4)
