"""models.hooks: finding the decoder blocks per model family, and block hooks that edit and clean up."""

from __future__ import annotations

import pytest
import torch
from torch import nn
import transformers as tf

from featdrift.models.hooks import block_hook, block_hooks, decoder_layers
from featdrift.models.load import load_model

from helpers.acts import ARCH, make_model

SMALL = {"vocab_size": 40, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 3,
         "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 32}
FAMILIES = {
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, lambda m: m.model.layers),
    "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM, lambda m: m.model.layers),
    "mistral": (tf.MistralConfig, tf.MistralForCausalLM, lambda m: m.model.layers),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, lambda m: m.model.layers),
    "gpt2": (lambda **_: tf.GPT2Config(vocab_size=40, n_embd=16, n_layer=3, n_head=2, n_positions=32),
             tf.GPT2LMHeadModel, lambda m: m.transformer.h),
    "gpt_neox": (lambda **_: tf.GPTNeoXConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                             num_attention_heads=2, max_position_embeddings=32),
                 tf.GPTNeoXForCausalLM, lambda m: m.gpt_neox.layers),
}


def build(family: str):
    config_cls, model_cls, _ = FAMILIES[family]
    torch.manual_seed(0)
    return model_cls(config_cls(**SMALL)).eval()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    model, _ = load_model(make_model(tmp_path_factory.mktemp("hooks") / "base", 0))
    return model.eval()


IDS = torch.tensor([[1, 5, 9, 3, 7, 2], [4, 4, 8, 1, 0, 6]])


def test_decoder_layers_of_tiny_llama(llama):
    blocks = decoder_layers(llama)
    assert blocks is llama.model.layers and len(blocks) == ARCH["n_layers"]
    assert decoder_layers(llama.model) is blocks  # the bare decoder too


@pytest.mark.parametrize("family", list(FAMILIES))
def test_decoder_layers_per_family(family):
    model = build(family)
    blocks = decoder_layers(model)
    assert blocks is FAMILIES[family][2](model) and len(blocks) == 3
    seen = []
    with torch.no_grad(), block_hook(model, 1, lambda h: seen.append(h.shape)):
        model(IDS)
    assert seen == [(*IDS.shape, 16)]


def test_decoder_layers_through_peft():
    peft = pytest.importorskip("peft")
    model = build("qwen2")
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))
    assert decoder_layers(wrapped) is model.model.layers


def test_unknown_model_names_its_class():
    with pytest.raises(ValueError, match=r"^Sequential: cannot find the decoder blocks") as e:
        decoder_layers(nn.Sequential(nn.Linear(2, 2)))
    assert "\n" not in str(e.value)


def test_hook_edits_then_restores(llama):
    with torch.no_grad():
        clean = llama(IDS).logits
        with block_hook(llama, 0, lambda h: None):  # None: observe only, bit-identical
            assert torch.equal(llama(IDS).logits, clean)
        with block_hook(llama, 0, lambda h: h * 0.5):
            edited = llama(IDS).logits
        assert not torch.allclose(edited, clean)
        assert torch.equal(llama(IDS).logits, clean)
    assert all(not b._forward_hooks for b in decoder_layers(llama))


def test_no_hook_left_after_an_exception(llama):
    def boom(h):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), block_hook(llama, 1, boom):
        llama(IDS)
    with pytest.raises(KeyError), block_hook(llama, 0, lambda h: None):
        raise KeyError("in the body")
    assert all(not b._forward_hooks for b in decoder_layers(llama))


def test_layer_out_of_range_names_the_setting(llama):
    with pytest.raises(ValueError, match=r"^activations.layers: layer 2 out of range \(the model has 2 blocks\)$"):
        with block_hook(llama, 2, lambda h: None, name="activations.layers"):
            pass
    assert all(not b._forward_hooks for b in decoder_layers(llama))


def test_stop_after_ends_the_forward_quietly(llama):
    ran, kept = [], {}
    handles = [b.register_forward_pre_hook(lambda *_a, i=i: ran.append(i)) for i, b in enumerate(decoder_layers(llama))]
    try:
        with block_hooks(llama, {0: lambda h: kept.setdefault(0, h)}, stop_after=0):
            llama(IDS)
            raise AssertionError("the forward should have stopped")
    finally:
        for h in handles:
            h.remove()
    assert ran == [0] and kept[0].shape == (*IDS.shape, ARCH["d_model"])
    assert all(not b._forward_hooks for b in decoder_layers(llama))


class TupleBlock(nn.Module):
    """A block in the older transformers style: (hidden, extra)."""

    def forward(self, h):
        return h + 1, "extra"


class TensorBlock(nn.Module):
    def forward(self, h):
        return h + 1


class Toy(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.layers = nn.ModuleList([block, TensorBlock()])

    def forward(self, h):
        out = self.layers[0](h)
        return out, self.layers[1](out[0] if isinstance(out, tuple) else out)


@pytest.mark.parametrize("block", [TupleBlock, TensorBlock])
def test_tuple_and_tensor_outputs(block):
    toy, x = Toy(block()), torch.zeros(2, 3)
    seen = []
    with block_hook(toy, 0, lambda h: seen.append(h) or h * 10):
        first, last = toy(x)
    assert torch.equal(seen[0], x + 1)  # the hook gets the tensor, not the tuple
    if block is TupleBlock:
        assert isinstance(first, tuple) and first[1] == "extra" and torch.equal(first[0], (x + 1) * 10)
    else:
        assert torch.equal(first, (x + 1) * 10)
    assert torch.equal(last, (x + 1) * 10 + 1)  # the edit flows downstream
    assert torch.equal(toy(x)[1], x + 2)  # and is gone after the context
