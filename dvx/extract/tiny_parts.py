"""Parts the tiny twins share: tokenizers (no vocabulary files can be downloaded here), CLIP text configs
and the SD-style 8x VAE.

Everything is saved with ``save_pretrained`` and loaded back with the same ``from_pretrained`` calls as the
real models; only the empty prompt is ever encoded, so a handful of tokens suffices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"


def tiny_clip_config(hidden_size: int = 32, **overrides: Any) -> Any:
    """A 2-layer CLIP text config over the tiny CLIP tokenizer's 16 tokens."""
    from transformers import CLIPTextConfig

    kw: dict[str, Any] = dict(
        vocab_size=16,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextConfig(**(kw | overrides))


def save_tiny_sd_vae(folder: Path, seed: int = 1, **overrides: Any) -> None:
    """An SD-style ``AutoencoderKL`` with 4 levels (8x downsampling), 8-16 channels, random init."""
    import torch
    from diffusers import AutoencoderKL

    kw: dict[str, Any] = dict(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=128,
    )
    torch.manual_seed(seed)
    AutoencoderKL(**(kw | overrides)).save_pretrained(folder)


def save_tiny_clip_text(folder: Path, seed: int = 2) -> None:
    """The SD-style text parts: a tiny ``CLIPTextModel`` in ``text_encoder/`` and its tokenizer."""
    import torch
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    CLIPTextModel(tiny_clip_config()).save_pretrained(folder / "text_encoder")
    save_tiny_clip_tokenizer(folder / "tokenizer")


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
