import json

import pytest
import torch
from safetensors.torch import save_file

from featdrift.models.build import tiny_llama
from featdrift.models.load import ModelLoadError, load_model, load_tokenizer
from featdrift.models.tokenizer import char_tokenizer

ARCH = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "max_len": 64}


def test_char_tokenizer_round_trips_and_keeps_settings(tmp_path):
    tok = char_tokenizer(64)
    text = "Compute 12+7-5.\n12+7=19\nAnswer: 14."
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids
    assert again.padding_side == "left" and again.model_max_length == 64


def test_load_round_trip(tmp_path):
    tok = char_tokenizer(64)
    model = tiny_llama(ARCH, tok)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, tok2 = load_model(tmp_path)
    x = torch.tensor([tok("Answer: 3")["input_ids"]])
    assert torch.equal(model(x).logits, loaded(x).logits)


def test_a_resaved_tokenizer_does_not_record_how_it_was_loaded(tmp_path):
    # trl saves the loaded tokenizer into every checkpoint; local_files_only followed HF_HUB_OFFLINE there
    char_tokenizer(64).save_pretrained(tmp_path / "a")
    load_tokenizer(tmp_path / "a").save_pretrained(tmp_path / "b")
    first, again = (json.loads((tmp_path / d / "tokenizer_config.json").read_text()) for d in "ab")
    assert again == first


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="no/such: model directory does not exist"):
        load_model(tmp_path / "no/such")


def test_pickle_weights_are_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelLoadError, match=r"only pickle weights \(pytorch_model.bin\), which are refused"):
        load_model(tmp_path)


def test_not_a_causal_lm_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "not-a-model"}')
    save_file({"w": torch.zeros(1)}, tmp_path / "model.safetensors")
    with pytest.raises(ModelLoadError, match="not a loadable causal LM"):
        load_model(tmp_path)
