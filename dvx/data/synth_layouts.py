"""Write rendered synthetic videos in the real datasets' on-disk layouts (DAVIS, UCF101, Cityscapes, MOVi
export, JHMDB) plus dvx's own ``extra/`` track files, so the real readers read the synthetic world.

Each ``write_*`` function writes one video (or one layout's index files) and returns the path it wrote,
relative to the world root, for ``world.json``. Formats follow the originals: see docs/synthetic.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dvx.data.cityscapes import DEFAULT_BASELINE_M
from dvx.data.images import write_indexed_png
from dvx.data.synth_render import SyntheticVideo, Tracks

JPEG_QUALITY = 95
PNG_COMPRESS = 1  # fast zlib level: the files stay valid, lossless PNGs
CITYSCAPES_CITY = "synth"


def ucf_class_name(motion_class: str) -> str:
    """UCF101-style CamelCase class folder name: ``pan_left`` -> ``PanLeft``."""
    return "".join(part.capitalize() for part in motion_class.split("_"))


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=PNG_COMPRESS)


def _lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ---- DAVIS-2017 -------------------------------------------------------------------------------------
def write_davis(root: Path, video_id: str, video: SyntheticVideo) -> str:
    """``DAVIS/JPEGImages/480p/<id>/%05d.jpg`` (quality 95, 4:4:4) and palette ``Annotations/480p/<id>``."""
    frames_dir = root / "DAVIS" / "JPEGImages" / "480p" / video_id
    masks_dir = root / "DAVIS" / "Annotations" / "480p" / video_id
    frames_dir.mkdir(parents=True, exist_ok=True)
    for t, (frame, labels) in enumerate(zip(video.frames, video.instances, strict=True)):
        Image.fromarray(frame).save(frames_dir / f"{t:05d}.jpg", quality=JPEG_QUALITY, subsampling=0)
        write_indexed_png(masks_dir / f"{t:05d}.png", labels)
    return str(frames_dir.relative_to(root))


def write_davis_imagesets(root: Path, train: Sequence[str], val: Sequence[str]) -> None:
    """``DAVIS/ImageSets/2017/{train,val}.txt``: one sequence name per line."""
    sets = root / "DAVIS" / "ImageSets" / "2017"
    _lines(sets / "train.txt", sorted(train))
    _lines(sets / "val.txt", sorted(val))


# ---- UCF101 -----------------------------------------------------------------------------------------
def ucf_relpath(motion_class: str, group: int, clip: int = 1) -> str:
    cls = ucf_class_name(motion_class)
    return f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"


def write_ucf(root: Path, relpath: str, video: SyntheticVideo, fps: float) -> str:
    """``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``: FFV1 (lossless, bgr0) in AVI, decodes back exactly."""
    import av  # heavy-ish import, only when writing videos

    path = root / "UCF-101" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, _ = video.frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
        for frame in video.frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return str(path.relative_to(root))


def write_ucf_splits(
    root: Path, classes: Sequence[str], train: Sequence[tuple[str, int]], test: Sequence[str]
) -> None:
    """``ucfTrainTestlist/{classInd.txt, trainlist01.txt, testlist01.txt}`` in the official formats.

    ``classes`` are UCF class names in label order; ``train`` holds (relpath, 0-based label).
    """
    lists = root / "ucfTrainTestlist"
    _lines(lists / "classInd.txt", [f"{i + 1} {name}" for i, name in enumerate(classes)])
    _lines(lists / "trainlist01.txt", [f"{rel} {label + 1}" for rel, label in sorted(train)])
    _lines(lists / "testlist01.txt", sorted(test))


# ---- Cityscapes -------------------------------------------------------------------------------------
def cityscapes_camera(height: int, width: int) -> dict[str, Any]:
    return {
        "extrinsic": {
            "baseline": DEFAULT_BASELINE_M,  # Cityscapes' own rig; fx = fy = frame width
            "pitch": 0.0,
            "roll": 0.0,
            "x": 0.0,
            "y": 0.0,
            "yaw": 0.0,
            "z": 0.0,
        },
        "intrinsic": {"fx": float(width), "fy": float(width), "u0": width / 2, "v0": height / 2},
    }


def disparity_png_values(depth: np.ndarray, camera: Mapping[str, Any]) -> np.ndarray:
    """Cityscapes disparity encoding: d = baseline * fx / depth, stored as p = d * 256 + 1 (uint16)."""
    d = camera["extrinsic"]["baseline"] * camera["intrinsic"]["fx"] / depth.astype(np.float64)
    return np.clip(np.rint(d * 256 + 1), 1, 65535).astype(np.uint16)


def cityscapes_instance_ids(instances: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Cityscapes ``instanceIds``: class id * 1000 + the instance's 0-based number within its class on
    instance pixels, the class id elsewhere (here the synthetic world's label ids are its train ids)."""
    out = semantic.astype(np.uint16)
    per_class: dict[int, int] = {}
    for k in np.unique(instances):
        if k == 0:
            continue
        where = instances == k
        cls = int(semantic[where][0])
        out[where] = cls * 1000 + per_class.get(cls, 0)
        per_class[cls] = per_class.get(cls, 0) + 1
    return out


def cityscapes_name(index: int, frame: int) -> str:
    return f"{CITYSCAPES_CITY}_{index:06d}_{frame:06d}"


def write_cityscapes(root: Path, split: str, name: str, video: SyntheticVideo, t: int) -> str:
    """One frame: ``leftImg8bit``, ``gtFine`` (labelTrainIds 'L', instanceIds 16-bit), 16-bit ``disparity``
    and ``camera`` json, all under ``cityscapes/<kind>/<split>/synth/``."""
    base = root / "cityscapes"
    city = CITYSCAPES_CITY
    _, h, w, _ = video.frames.shape
    camera = cityscapes_camera(h, w)
    instances = cityscapes_instance_ids(video.instances[t], video.semantic[t])
    _png(base / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", video.frames[t])
    _png(base / "gtFine" / split / city / f"{name}_gtFine_labelTrainIds.png", video.semantic[t])
    _png(base / "gtFine" / split / city / f"{name}_gtFine_instanceIds.png", instances)
    _png(
        base / "disparity" / split / city / f"{name}_disparity.png",
        disparity_png_values(video.depth[t], camera),
    )
    cam = base / "camera" / split / city / f"{name}_camera.json"
    cam.parent.mkdir(parents=True, exist_ok=True)
    cam.write_text(json.dumps(camera, indent=4))
    return f"cityscapes/leftImg8bit/{split}/{city}/{name}_leftImg8bit.png"


# ---- MOVi export ------------------------------------------------------------------------------------
def write_movi(root: Path, split: str, video_id: str, video: SyntheticVideo) -> str:
    """``movi/<split>/<id>/{rgb,segmentations}/%05d.png`` ('L' instance ids) and ``depth/%05d.npy``."""
    base = root / "movi" / split / video_id
    for sub in ("rgb", "segmentations", "depth"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for t in range(len(video.frames)):
        _png(base / "rgb" / f"{t:05d}.png", video.frames[t])
        _png(base / "segmentations" / f"{t:05d}.png", video.instances[t])
        np.save(base / "depth" / f"{t:05d}.npy", video.depth[t].astype(np.float32))
    return str(base.relative_to(root))


# ---- JHMDB ------------------------------------------------------------------------------------------
def write_jhmdb(root: Path, cls: str, video_id: str, video: SyntheticVideo) -> str:
    """``JHMDB/Rename_Images/<class>/<id>/%05d.png`` (1-based) and ``joint_positions.mat`` whose ``pos_img``
    (2 x 15 x F, 1-based pixel coordinates) holds the actor's (instance 1's) 15 tracked points."""
    from scipy.io import savemat  # only when writing

    base = root / "JHMDB"
    frames_dir = base / "Rename_Images" / cls / video_id
    for t, frame in enumerate(video.frames):
        _png(frames_dir / f"{t + 1:05d}.png", frame)
    joints = actor_joints(video.tracks)
    pos_img = np.transpose(joints + 1.0, (2, 1, 0)).astype(np.float64)  # (F, J, 2) -> (2, J, F), 1-based
    mat = base / "joint_positions" / cls / video_id / "joint_positions.mat"
    mat.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(mat), {"pos_img": pos_img})
    return str(frames_dir.relative_to(root))


def actor_joints(tracks: Tracks) -> np.ndarray:
    """(F, J, 2) 0-based positions of the points on instance 1 (the actor)."""
    return tracks.xy[:, tracks.owner == 1].astype(np.float64)


def write_jhmdb_splits(root: Path, membership: Mapping[str, Sequence[tuple[str, bool]]]) -> None:
    """``JHMDB/splits/<class>_test_split1.txt``: ``<video>.avi 1`` (train) or ``2`` (test)."""
    for cls, videos in membership.items():
        lines = [f"{vid}.avi {2 if is_test else 1}" for vid, is_test in sorted(videos)]
        _lines(root / "JHMDB" / "splits" / f"{cls}_test_split1.txt", lines)


# ---- dvx extras -------------------------------------------------------------------------------------
def write_tracks(root: Path, video_id: str, tracks: Tracks) -> str:
    """``extra/<id>.npz``: xy (F, N, 2) float32, occluded (F, N) bool, owner (N,) int32."""
    path = root / "extra" / f"{video_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, xy=tracks.xy, occluded=tracks.occluded, owner=tracks.owner)
    return str(path.relative_to(root))
