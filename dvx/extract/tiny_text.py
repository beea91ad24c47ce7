"""Tiny tokenizers and text encoders for the tiny test models (no vocabulary files can be downloaded here).

They are saved with ``save_pretrained`` and loaded back with the same ``from_pretrained`` calls as the
real ones; only the empty prompt is ever encoded, so a handful of tokens suffices.
"""

from __future__ import annotations

import json
from pathlib import Path

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def save_tiny_clip_tokenizer(folder: Path, max_length: int = 77) -> None:
    """A CLIP BPE tokenizer with a 16-token vocabulary (same class as SD's tokenizer)."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmn"
    vocab = {CLIP_BOS: 0, CLIP_EOS: 1, **{f"{c}</w>": i + 2 for i, c in enumerate(letters)}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        model_max_length=max_length,
        pad_token=CLIP_EOS,
    )
    tok.save_pretrained(folder)


def save_tiny_t5_tokenizer(folder: Path, max_length: int = 32) -> None:
    """A word-level fast tokenizer that ends every text with ``</s>`` like T5's (vocabulary of 8)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "a": 3, "b": 4, "c": 5, "d": 6, "e": 7}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
    tok.save_pretrained(folder)
