"""The tiny model's tokenizers, built offline and saved as ordinary HF fast tokenizers: one token
per character (the default), or a byte-level BPE trained on the pretraining corpus."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
CHARS = sorted(set(string.ascii_letters + string.digits + " \n.,?:;=+-*/'!()<>"))
# Qwen2's pre-tokenization (transformers' Qwen2Tokenizer): words, single digits, punctuation runs, spaces.
QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
               r"""\s*[\r\n]+|\s+(?!\S)|\s+""")


def char_tokenizer(model_max_length: int) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(list(SPECIALS.values()) + CHARS)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIALS["unk_token"]))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    # padding_side and model_max_length must go to the constructor, or they are not saved.
    return PreTrainedTokenizerFast(tokenizer_object=tk, padding_side="left", model_max_length=model_max_length, **SPECIALS)


def bpe_tokenizer(texts, vocab_size: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`, pre-tokenized exactly as transformers' Qwen2Tokenizer
    rebuilds it: AutoTokenizer swaps any fast tokenizer of a model_type qwen2 folder for that class,
    and a different pipeline would come back with other ids (models.load avoids the swap as well)."""
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, padding_side="left", model_max_length=model_max_length, **SPECIALS)


def make_tokenizer(kind: str, texts, bpe_vocab: int, model_max_length: int) -> PreTrainedTokenizerFast:
    """base.pretrain.tokenizer: `char` (texts unused) or `bpe` trained on the corpus texts."""
    if kind == "char":
        return char_tokenizer(model_max_length)
    if kind == "bpe":
        return bpe_tokenizer(texts, bpe_vocab, model_max_length)
    raise ValueError(f"base.pretrain.tokenizer: unknown tokenizer {kind!r} (char or bpe)")
