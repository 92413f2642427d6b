"""TopK dictionaries (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") with AuxK.

Each token keeps its own k largest entries of relu(pre): training and inference are the
same function of one token, so nothing is calibrated after training, and each model's
readout is the top-k of its own pre-activation. Because only k latents are active per
token, the training step is sparse past the encoder's forward matmul: the (B, n)
pre-activation is computed in row chunks and only each token's top-k is kept
(`select_topk`), the code is those k values and ids (`SparseCode`), the decoder gathers
the k rows of each token (`embedding_bag`), and the encoder's backward is x^T S for the
(B, n) gradient S that is nonzero at the B*k chosen entries only (`encoder_values`). So
nothing of size B*n is held or back-propagated, which is what lets n = 32,768 latents
train at the paper's width. The decoder is kept at joint norm 1 per latent, as for
BatchTopK, and AuxK revives dead latents (sparse too: each token's aux_k dead latents).
`DenseTopKTraining` is the same step on the dense (B, n) code, the reference of the tests.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import Architecture
from .batchtopk import AuxKTraining


# Entries of the pre-activation computed at a time (64 MB in float32): whole rows, so that a row's
# top-k is taken from one chunk; large enough that the encoder matmul streams W_enc a few times only.
CHUNK = 1 << 24


def topk_parts(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, latent ids), each (..., k): the k largest entries of relu(pre) per row (ties: torch.topk's order)."""
    vals, idx = pre.topk(min(k, pre.shape[-1]), dim=-1, sorted=False)
    return torch.relu(vals), idx


def dense_code(pre: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The (..., n) code, shaped like `pre`, with `vals` at latents `idx` and zero elsewhere."""
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def topk_code(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Dense code (..., n): the row's top-k entries of relu(pre), zero elsewhere."""
    return dense_code(pre, *topk_parts(pre, k))


def sparse_decode(vals: torch.Tensor, idx: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor) -> torch.Tensor:
    """b_dec + sum_j vals[:, j] W_dec[idx[:, j]] for (B, k) codes and a (n, D) decoder: the dense
    f @ W_dec without touching the n - k silent rows, forward or backward."""
    return b_dec + F.embedding_bag(idx, W_dec, per_sample_weights=vals, mode="sum")


class TopKPre(NamedTuple):
    """What the sparse step keeps of the (B, n) pre-activation pre = xs W_enc + b_enc (no autograd):
    each token's top-k raw values `top` and latent ids `idx` (B, k), with, when AuxK is on, the
    top-aux_k of its dead latents (`aux_top`, `aux_idx`, else None); and the encoder's inputs."""

    xs: torch.Tensor
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    top: torch.Tensor
    idx: torch.Tensor
    aux_top: torch.Tensor | None
    aux_idx: torch.Tensor | None


class SparseCode(NamedTuple):
    """A training code as each token's k values (B, k) (>= 0, differentiable) at latent ids idx (B, k)."""

    vals: torch.Tensor
    idx: torch.Tensor


def select_topk(xs: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int, dead: torch.Tensor | None = None,
                aux_k: int = 0, chunk: int = CHUNK, buf: torch.Tensor | None = None) -> TopKPre:
    """Each row's top-k of pre = xs W_enc + b_enc (ties: torch.topk's order), without autograd and
    without holding the (B, n) pre: it is computed about `chunk` entries (whole rows) at a time, into
    one (rows, n) buffer (`buf`: a step's buffer kept for the next, see `chunk_buffer`). With a `dead`
    mask (n,), also each row's top-aux_k among the dead latents (ids into all n), AuxK's candidates."""
    B, n = xs.shape[0], W_enc.shape[1]
    k = min(k, n)
    dead_ids = dead.nonzero().squeeze(1) if dead is not None else None
    ka = min(aux_k, len(dead_ids)) if dead_ids is not None else 0
    top, idx = xs.new_empty(B, k), torch.empty(B, k, dtype=torch.long, device=xs.device)
    aux_top, aux_idx = ((xs.new_empty(B, ka), torch.empty(B, ka, dtype=torch.long, device=xs.device)) if ka
                        else (None, None))
    buf = chunk_buffer(xs, n, chunk) if buf is None else buf
    rows = buf.shape[0]
    with torch.no_grad():
        for a in range(0, B, rows):
            b = min(B, a + rows)
            pre = torch.addmm(b_enc, xs[a:b], W_enc, out=buf[: b - a])
            torch.topk(pre, k, dim=-1, sorted=False, out=(top[a:b], idx[a:b]))
            if ka:
                v, j = pre.index_select(1, dead_ids).topk(ka, dim=-1, sorted=False)
                aux_top[a:b], aux_idx[a:b] = v, dead_ids[j]
    return TopKPre(xs, W_enc, b_enc, top, idx, aux_top, aux_idx)


def chunk_buffer(xs: torch.Tensor, n: int, chunk: int = CHUNK) -> torch.Tensor:
    """select_topk's (rows, n) buffer for a batch like xs: whole rows, about `chunk` entries."""
    return xs.new_empty(max(1, min(xs.shape[0], chunk // n)), n)


class _PreAt(torch.autograd.Function):
    """pre[b, idx[b, j]] = xs[b] . W_enc[:, idx[b, j]] + b_enc[idx[b, j]]: forward the given values
    (computed without autograd), backward into W_enc and b_enc at the B*k entries only."""

    @staticmethod
    def forward(ctx, values, xs, W_enc, b_enc, idx):
        ctx.save_for_backward(xs, idx)
        ctx.n = W_enc.shape[1]
        return values.clone()

    @staticmethod
    def backward(ctx, g):
        xs, idx = ctx.saved_tensors
        g = g.contiguous()
        gW = gb = None
        if ctx.needs_input_grad[2]:
            gW = encoder_grad(xs, g, idx, ctx.n)
        if ctx.needs_input_grad[3]:
            gb = g.new_zeros(ctx.n).index_add_(0, idx.reshape(-1), g.reshape(-1))
        return None, None, gW, gb, None


def encoder_grad(xs: torch.Tensor, g: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """(D, n) xs^T S for the (B, n) matrix S with g[b, j] at (b, idx[b, j]) and zero elsewhere:
    row idx[b, j] of the transposed gradient gets g[b, j] * xs[b] (B*k*D multiply-adds, not B*n*D),
    one of the k slots at a time (a (B, D) temporary, not (B*k, D)); deterministic (index_add_ on CPU)."""
    gt = xs.new_zeros(n, xs.shape[1])
    for j in range(idx.shape[1]):
        gt.index_add_(0, idx[:, j], xs * g[:, j, None])
    return gt.t().contiguous()


def encoder_values(pre: TopKPre, values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The pre-activation `values` at latents `idx` (B, k'), as a function of W_enc and b_enc with a sparse backward."""
    return _PreAt.apply(values, pre.xs, pre.W_enc, pre.b_enc, idx)


def sparse_aux_loss(pre: TopKPre, e: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """`batchtopk.aux_loss` on each token's top-aux_k dead latents (`pre.aux_idx`): the same
    loss, decoded and back-propagated through those B*aux_k entries only."""
    vals = torch.relu(encoder_values(pre, pre.aux_top, pre.aux_idx))
    e_hat = F.embedding_bag(pre.aux_idx, W_dec, per_sample_weights=vals, mode="sum")
    return F.mse_loss(e_hat, e, reduction="sum") / e.pow(2).sum().clamp_min(1e-8)


class TopKTraining(AuxKTraining):
    """The sparse step (module docstring); the same function of the weights as DenseTopKTraining."""

    def __init__(self, D, cfg, steps):
        super().__init__(D, cfg, steps)
        self._buf = None  # select_topk's chunk buffer, kept from step to step (no fresh 64 MB a step)

    def encode(self, step, xs, W_enc, b_enc, dead):
        aux = bool(int(dead.sum())) and self.cfg.aux_coeff > 0
        if self._buf is None:
            self._buf = chunk_buffer(xs, W_enc.shape[1])
        return select_topk(xs, W_enc, b_enc, self.D.k, dead if aux else None, self.cfg.aux_k, buf=self._buf)

    def activate(self, step, pre):
        return SparseCode(torch.relu(encoder_values(pre, pre.top, pre.idx)), pre.idx)

    def decode(self, step, f, W_dec, b_dec):
        return sparse_decode(f.vals, f.idx, W_dec, b_dec)

    def loss(self, step, pre, f, xs, xhat, W_dec, dead):
        aux = torch.zeros(())
        if pre.aux_idx is not None:
            aux = sparse_aux_loss(pre, (xs - xhat).detach(), W_dec)
        return self.cfg.aux_coeff * aux, aux

    def fired(self, f):
        out = torch.zeros(self.D.n, dtype=torch.bool, device=f.idx.device)
        out[f.idx[f.vals.detach() > 0]] = True
        return out

    def l0(self, f):
        return float((f.vals > 0).sum(-1).float().mean())


class DenseTopKTraining(AuxKTraining):
    """TopK on the dense (B, n) code: dense decoder, dense encoder backward, `batchtopk.aux_loss`.
    The reference the sparse TopKTraining is tested against (and benchmarked with --dense-decode)."""

    def activate(self, step, pre):
        return topk_code(pre, self.D.k)


class TopK(Architecture):
    name = "topk"
    saelens_name = "topk"
    cfg_keys = ("k",)
    training = TopKTraining
    elementwise_readout = False  # a latent fires only if it beats the token's other latents

    def setup(self, D):
        if not D.k:
            raise ValueError("arch topk needs k")

    def activate(self, D, pre, train=False, threshold=None):
        return topk_code(pre, D.k)

    def readout(self, D, m, pre):
        return topk_code(pre, D.k)

    def saelens_cfg(self, D):
        return {"k": int(D.k)}


ARCHITECTURE = TopK()
