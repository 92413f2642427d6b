"""The TopK architecture's sparse decoder path computes what the dense one does, forward and backward."""

from __future__ import annotations

import torch

from featdrift.dictionaries.arch.topk import sparse_decode, topk_code, topk_parts


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
