"""Codec presets for feature arrays. Every preset ends with a crc32c checksum so `verify` finds corruption.

The default is ``raw`` (no compression): measured on fp16 activations, lossless codecs gain at most
~1.07-1.14x while costing several times the write throughput (docs/benchmarks.md, benchmarks/
bench_codecs.py). The others are a choice for stores where disk, not throughput, is the limit.
"""

from __future__ import annotations

from typing import Any

from dvx.errors import ConfigError

DEFAULT_CODEC = "raw"

CODECS: dict[str, str] = {
    "raw": "no compression (crc32c checksum only)",
    "lz4": "Blosc LZ4, byte shuffle",
    "zstd": "Zstd level 3",
    "blosc-zstd-bitshuffle": "Blosc Zstd level 3, bit shuffle",
}


def compressors_for(name: str) -> list[Any]:
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    if name == "raw":
        chain: list[Any] = []
    elif name == "lz4":
        chain = [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=2)]
    elif name == "zstd":
        chain = [ZstdCodec(level=3)]
    elif name == "blosc-zstd-bitshuffle":
        chain = [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", typesize=2)]
    else:
        raise ConfigError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")
    return [*chain, Crc32cCodec()]
