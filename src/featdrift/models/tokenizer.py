"""A character-level tokenizer built offline, saved as an ordinary HF fast tokenizer."""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
CHARS = sorted(set(string.ascii_letters + string.digits + " \n.,?:;=+-*/'!()<>"))


def char_tokenizer(model_max_length: int) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(list(SPECIALS.values()) + CHARS)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIALS["unk_token"]))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    # padding_side and model_max_length must go to the constructor, or they are not saved.
    return PreTrainedTokenizerFast(tokenizer_object=tk, padding_side="left", model_max_length=model_max_length, **SPECIALS)
