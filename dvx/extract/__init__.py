"""Stage 1: backbones, hooks, noising and the extraction runner. The model registry is lazy.

Every real model loads by hub id (or a local folder via ``--weights``); every family has a ``tiny-*``
twin of the same classes, built from config with a fixed seed, for tests and the demo.
"""

from __future__ import annotations

from dvx.registry import Registry

MODELS = Registry("model")

_SD = "dvx.extract.backbones.sd:StableDiffusionBackbone"
_SVD = "dvx.extract.backbones.svd:StableVideoDiffusionBackbone"
_TWIN = "dvx.extract.backbones.svd:TwinSVDBackbone"
_TWIN_FRAMES = "dvx.extract.backbones.svd:SVDFramesBackbone"
_MS = "dvx.extract.backbones.modelscope:ModelScopeBackbone"
_SD3 = "dvx.extract.backbones.sd3:SD3Backbone"
_WAN = "dvx.extract.backbones.wan:WanBackbone"
_DINO = "dvx.extract.backbones.dinov2:DinoV2Backbone"
_VMAE = "dvx.extract.backbones.videomae:VideoMAEBackbone"
_VJEPA = "dvx.extract.backbones.vjepa2:VJepa2Backbone"


def _reg(
    name: str,
    target: str,
    family: str,
    source: str,
    help: str,
    resolution: tuple[int, int],
    clip_len: int | None = None,
    **options: object,
) -> None:
    MODELS.register(
        name,
        target,
        help,
        family=family,
        source=source,
        resolution=resolution,
        clip_len=clip_len,
        options=options,
    )


# video diffusion
_reg("svd", _SVD, "svd", "stabilityai/stable-video-diffusion-img2vid", "SVD v1 (14 frames)", (576, 1024), 14)
_reg(
    "svd-xt",
    _SVD,
    "svd",
    "stabilityai/stable-video-diffusion-img2vid-xt",
    "SVD-XT (25 frames)",
    (576, 1024),
    25,
)
_reg(
    "svd-1.1",
    _SVD,
    "svd",
    "stabilityai/stable-video-diffusion-img2vid-xt-1-1",
    "SVD-XT 1.1 (25 frames)",
    (576, 1024),
    25,
)
_reg(
    "modelscope",
    _MS,
    "modelscope",
    "ali-vilab/text-to-video-ms-1.7b",
    "ModelScope T2V 1.7B (16 frames)",
    (256, 256),
    16,
)
_reg(
    "wan-2.1",
    _WAN,
    "wan",
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "Wan 2.1 T2V 1.3B, the video DiT standing in for Open-Sora (81 frames)",
    (480, 832),
    81,
)
# image diffusion
_reg("sd-1.4", _SD, "sd", "CompVis/stable-diffusion-v1-4", "Stable Diffusion 1.4", (512, 512))
_reg("sd-1.5", _SD, "sd", "stable-diffusion-v1-5/stable-diffusion-v1-5", "Stable Diffusion 1.5", (512, 512))
_reg(
    "sd-2.0",
    _SD,
    "sd",
    "stabilityai/stable-diffusion-2",
    "Stable Diffusion 2.0 (768, v-prediction)",
    (768, 768),
)
_reg(
    "sd-2.1",
    _SD,
    "sd",
    "stabilityai/stable-diffusion-2-1",
    "Stable Diffusion 2.1 (768, v-prediction; DIFT's)",
    (768, 768),
)
_reg(
    "sd-2.1-base",
    _SD,
    "sd",
    "stabilityai/stable-diffusion-2-1-base",
    "Stable Diffusion 2.1 base (512)",
    (512, 512),
)
_reg(
    "sd3",
    _SD3,
    "sd3",
    "stabilityai/stable-diffusion-3-medium-diffusers",
    "Stable Diffusion 3 medium",
    (1024, 1024),
)
_reg(
    "sd3-no-t5",
    _SD3,
    "sd3",
    "stabilityai/stable-diffusion-3-medium-diffusers",
    "Stable Diffusion 3 medium, T5 part of the null prompt zeros (T5 never downloaded)",
    (1024, 1024),
    use_t5=False,
)
# non-diffusion baselines
_reg("dinov2", _DINO, "dinov2", "facebook/dinov2-large", "DINOv2 ViT-L/14", (448, 448))
_reg(
    "videomae",
    _VMAE,
    "videomae",
    "MCG-NJU/videomae-large",
    "VideoMAE ViT-L (16 frames, tubelet 2)",
    (224, 224),
    16,
)
_reg(
    "vjepa2",
    _VJEPA,
    "vjepa2",
    "facebook/vjepa2-vitl-fpc64-256",
    "V-JEPA 2 ViT-L (16 frames, tubelet 2)",
    (256, 256),
    16,
)
# tiny twins: same classes, random init from config with a fixed seed
_reg("tiny-svd", _SVD, "svd", "tiny:svd", "tiny SVD (tests, demo)", (128, 256), 14)
_reg("tiny-sd", _SD, "sd", "tiny:sd", "tiny SD (tests, demo)", (128, 256))
_reg("tiny-modelscope", _MS, "modelscope", "tiny:modelscope", "tiny ModelScope (tests, demo)", (128, 256), 16)
_reg("tiny-sd3", _SD3, "sd3", "tiny:sd3", "tiny SD3 (tests, demo)", (128, 256))
_reg("tiny-wan", _WAN, "wan", "tiny:wan", "tiny Wan 2.1 (tests, demo)", (128, 256), 9)
_reg("tiny-dinov2", _DINO, "dinov2", "tiny:dinov2", "tiny DINOv2 (tests, demo)", (126, 252))
_reg("tiny-videomae", _VMAE, "videomae", "tiny:videomae", "tiny VideoMAE (tests, demo)", (128, 256), 16)
# square: V-JEPA 2's RoPE grid is square in transformers (see backbones/vjepa2.py)
_reg("tiny-vjepa2", _VJEPA, "vjepa2", "tiny:vjepa2", "tiny V-JEPA 2 (tests, demo)", (128, 128), 16)
# twins dvx trains itself (`dvx twin train`; docs/twins.md): weights only from --weights DIR
_reg(
    "twin-svd",
    _TWIN,
    "svd",
    "twin:needs-weights",
    "a dvx-trained tiny SVD twin, on clips (--weights)",
    (64, 96),
    8,
)
_reg(
    "twin-svd-frames",
    _TWIN_FRAMES,
    "svd",
    "twin:needs-weights",
    "a dvx-trained tiny SVD twin, each frame its own 1-frame clip (--weights)",
    (64, 96),
)
