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


def test_a_variant_safetensors_does_not_hide_the_default_bin() -> None:
    # diffusers reads diffusion_pytorch_model.bin here: the fp16 file is only read with variant="fp16"
    names = [
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "text_encoder/pytorch_model.bin",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/pytorch_model.safetensors",  # not a name transformers reads
    ]
    assert default_variant(names) == [
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "text_encoder/pytorch_model.bin",
        "text_encoder/pytorch_model.safetensors",
    ]


def test_sharded_safetensors_hide_sharded_bin() -> None:
    names = [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model-00001-of-00002.bin",
        "unet/diffusion_pytorch_model.bin.index.json",
    ]
    assert default_variant(names) == [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
    ]
    # only sharded .bin weights: they are what from_pretrained reads
    only_bin = ["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"]
    assert default_variant(only_bin) == only_bin


def test_different_bin_weights_beside_a_variant_digest_differently(tmp_path: Path) -> None:
    digests = []
    for i, weights in enumerate((b"weights A", b"weights B")):
        sub = tmp_path / f"m{i}" / "unet"
        sub.mkdir(parents=True)
        (sub / "config.json").write_text("{}")
        (sub / "diffusion_pytorch_model.bin").write_bytes(weights)
        (sub / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"the same fp16 variant")
        digests.append(digest_folder(tmp_path / f"m{i}", ["unet"]))
    assert digests[0] != digests[1]


def test_digest_judges_each_nested_folder_on_its_own(tmp_path: Path) -> None:
    # a .bin in one folder is not hidden by a safetensors in another folder of the same part
    for name, data in (("a/model.safetensors", b"x"), ("b/pytorch_model.bin", b"y")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    first = digest_folder(tmp_path, [""])
    (tmp_path / "b/pytorch_model.bin").write_bytes(b"z")
    assert digest_folder(tmp_path, [""]) != first


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "unreachable"])
def test_offline_a_model_not_in_the_cache_is_one_line_naming_weights(
    how: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty local cache
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        import socket

        with socket.socket() as s:  # a loopback port nobody listens on: the connection is refused
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError) as err:
        resolve_folder(
            "stabilityai/stable-video-diffusion-img2vid", None, ["unet/*", "vae/*", "model_index.json"]
        )
    line = str(err.value)
    assert "\n" not in line and "--weights DIR" in line and "needed: unet/*, vae/*, model_index.json" in line
    assert ("HF_HUB_OFFLINE is set" if how == "HF_HUB_OFFLINE" else "is unreachable") in line
