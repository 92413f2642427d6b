"""Forward hooks on a causal LM's decoder blocks: the one place that knows where the blocks live
and what a block returns.

Capture (read block L's output), the CE splice (replace it with a reconstruction) and steering
(add a feature edit to it) all act on the residual stream after one block. Model families keep
their blocks under different attributes, and a transformers decoder layer may return the hidden
tensor or a tuple whose first element it is; both differences are handled here once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

# Where each family keeps its decoder blocks, tried in order on the unwrapped model.
LAYER_PATHS = (
    "model.layers",  # Llama, Qwen2, Qwen3, Mistral, Gemma (…ForCausalLM)
    "layers",  # the bare decoder (LlamaModel, Qwen2Model, …)
    "model.language_model.layers",  # Gemma 3 and other multimodal wrappers
    "transformer.h",  # GPT-2, GPT-Neo
    "h",  # GPT2Model
    "gpt_neox.layers",  # GPT-NeoX, Pythia
    "model.decoder.layers",  # OPT
)

HiddenFn = Callable[[torch.Tensor], "torch.Tensor | None"]


class _StopForward(Exception):
    """Raised by the stop_after block's hook to end a forward that has computed all it needs."""


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under peft (`get_base_model`) or torch.compile (`_orig_mod`) wrappers."""
    for _ in range(8):
        if hasattr(model, "get_base_model"):
            inner = model.get_base_model()
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            inner = model._orig_mod
        else:
            return model
        if inner is model:
            return model
        model = inner
    return model


def _path(model: nn.Module, path: str):
    for part in path.split("."):
        model = getattr(model, part, None)
        if model is None:
            return None
    return model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's decoder blocks, in order (block L's output is the residual stream after L)."""
    inner = _unwrap(model)
    for path in LAYER_PATHS:
        blocks = _path(inner, path)
        if isinstance(blocks, nn.ModuleList):
            return blocks
    raise ValueError(f"{type(model).__name__}: cannot find the decoder blocks (looked for {', '.join(LAYER_PATHS)})")


def hidden_of(output):
    """The residual-stream tensor in a block's output (a tensor, or a tuple/list led by it)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _rewrap(output, hidden: torch.Tensor):
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    return hidden


@contextlib.contextmanager
def block_hooks(model: nn.Module, fns: dict[int, HiddenFn], stop_after: int | None = None,
                name: str = "layer") -> Iterator[None]:
    """Call fns[L](hidden) on block L's output during every forward inside the context.

    A function returning a tensor replaces the block's output (re-wrapped like the original, in
    the output's dtype); returning None leaves it unchanged. With `stop_after`, the forward ends
    right after that block has run: the model call raises, the context swallows it, and the code
    after the model call inside the `with` is skipped, so make the forward the last statement there.
    The hooks are removed on exit, error or not, so nothing stays on a shared model.
    """
    blocks = decoder_layers(model)
    for L in [*fns, *([] if stop_after is None else [stop_after])]:
        if not 0 <= L < len(blocks):
            raise ValueError(f"{name}: layer {L} out of range (the model has {len(blocks)} blocks)")

    def make(L: int, fn: HiddenFn | None):
        def hook(_module, _inputs, output):
            h = hidden_of(output)
            new = None if fn is None else fn(h)
            if L == stop_after:
                raise _StopForward
            # Edits are computed in float32; a bf16/fp16 model's next block needs its own dtype back.
            return None if new is None else _rewrap(output, new.to(h.dtype))
        return hook

    handles = []
    try:
        for L in sorted({*fns, *([] if stop_after is None else [stop_after])}):
            handles.append(blocks[L].register_forward_hook(make(L, fns.get(L))))
        yield
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()


def block_hook(model: nn.Module, layer: int, fn: HiddenFn, name: str = "layer"):
    """block_hooks for one block: `with block_hook(model, L, fn): model(...)`."""
    return block_hooks(model, {layer: fn}, name=name)
