"""Weights: which files a hub download fetches and the digest covers."""

from pathlib import Path

import pytest

from dvx.errors import ConfigError
from dvx.extract.weights import default_variant, digest_folder, materialize_tiny, resolve_folder


def test_default_variant_keeps_what_from_pretrained_reads() -> None:
    names = [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.non_ema.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",  # only .bin here: kept
        "text_encoder/model.safetensors",
        "text_encoder/pytorch_model.bin",
        "text_encoder/flax_model.msgpack",
        "tokenizer/vocab.json",
    ]
    assert default_variant(names) == [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.bin",
        "text_encoder/model.safetensors",
        "tokenizer/vocab.json",
    ]


def test_digest_covers_used_files_only(tmp_path: Path) -> None:
    sub = tmp_path / "unet"
    sub.mkdir()
    (sub / "config.json").write_text("{}")
    (sub / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    first = digest_folder(tmp_path, ["unet"])
    (sub / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"other variant")
    assert digest_folder(tmp_path, ["unet"]) == first  # a variant in a shared cache changes nothing
    (sub / "diffusion_pytorch_model.safetensors").write_bytes(b"new weights")
    assert digest_folder(tmp_path, ["unet"]) != first


def test_tiny_models_materialise_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVX_CACHE_DIR", str(tmp_path))
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")

    a = materialize_tiny("toy", build)
    b = materialize_tiny("toy", build)
    assert a == b and len(calls) == 1 and (a / "config.json").exists()
    assert not list(tmp_path.glob("tiny/*.tmp-*"))


def test_missing_local_folders_and_bad_ids_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_folder("./no/such/folder", None, None)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_folder("not-a-hub-id", None, None)
