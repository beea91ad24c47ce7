"""Stage 2: probes from the cache. Never imports dvx.extract, diffusers or transformers (tested).

Tasks are registered lazily by name; each task module holds one protocol and declares its options
(dvx/probe/task.py). A registry line names the task's class, its help, the dataset reader it reads by
default and, with ``defaults={...}``, option defaults for that name.
"""

from __future__ import annotations

from dvx.registry import Registry

TASKS = Registry("task")
# training-free label propagation (seed 002 §3.2.2; DIFT / DINO protocol)
TASKS.register(
    "davis17",
    "dvx.probe.tasks.davis:DavisPropagationTask",
    "DAVIS-2017 video object segmentation (J&F)",
    dataset="davis",
)
TASKS.register(
    "jhmdb",
    "dvx.probe.tasks.jhmdb:JhmdbPropagationTask",
    "JHMDB keypoint propagation (PCK@0.1/0.2)",
    dataset="jhmdb",
)
# training-free point tracking (TAP-Vid protocol; DIFT / DiffTrack matching)
TASKS.register(
    "tapvid-davis",
    "dvx.probe.tasks.tracking:TrackingTask",
    "TAP-Vid-DAVIS point tracking (AJ, delta_avg, OA)",
    dataset="tapvid-davis",
)
TASKS.register(
    "tapvid-kinetics",
    "dvx.probe.tasks.tracking:TrackingTask",
    "TAP-Vid-Kinetics point tracking (AJ, delta_avg, OA)",
    dataset="tapvid-kinetics",
)
TASKS.register(
    "tapvid-rgb-stacking",
    "dvx.probe.tasks.tracking:TrackingTask",
    "TAP-Vid-RGB-Stacking point tracking (AJ, delta_avg, OA)",
    dataset="tapvid-rgb-stacking",
)
# trained light heads
TASKS.register(
    "ucf101", "dvx.probe.tasks.action:ActionTask", "UCF101 action recognition (top-1/top-5)", dataset="ucf101"
)
TASKS.register(
    "hmdb51", "dvx.probe.tasks.action:ActionTask", "HMDB51 action recognition (top-1/top-5)", dataset="hmdb51"
)
TASKS.register(
    "cityscapes-seg",
    "dvx.probe.tasks.scene:SegmentationTask",
    "Cityscapes semantic segmentation (mIoU)",
    dataset="cityscapes",
)
TASKS.register(
    "cityscapes-depth",
    "dvx.probe.tasks.scene:DepthTask",
    "Cityscapes depth (mean L2 error)",
    dataset="cityscapes",
)
TASKS.register(
    "movi-c",
    "dvx.probe.tasks.discovery:ObjectDiscoveryTask",
    "MOVi-C object discovery (FG-ARI, mBO)",
    dataset="movi-c",
    defaults={"slots": 11},  # 10 objects + background (VideoSAUR)
)
TASKS.register(
    "movi-e",
    "dvx.probe.tasks.discovery:ObjectDiscoveryTask",
    "MOVi-E object discovery (FG-ARI, mBO)",
    dataset="movi-e",
    defaults={"slots": 24},  # up to 23 objects + background (VideoSAUR)
)
# the same protocols on the synthetic world, whose generator supplies every label
TASKS.register(
    "synthetic-action",
    "dvx.probe.tasks.action:ActionTask",
    "synthetic motion classes (top-1/top-5)",
    dataset="synthetic",
)
TASKS.register(
    "synthetic-seg",
    "dvx.probe.tasks.scene:SegmentationTask",
    "synthetic semantic segmentation (mIoU)",
    dataset="synthetic",
)
TASKS.register(
    "synthetic-depth",
    "dvx.probe.tasks.scene:DepthTask",
    "synthetic depth (mean L2 error)",
    dataset="synthetic",
)
TASKS.register(
    "synthetic-discovery",
    "dvx.probe.tasks.discovery:ObjectDiscoveryTask",
    "synthetic object discovery (FG-ARI, mBO)",
    dataset="synthetic",
    defaults={"slots": 4},  # at most 3 sprites + the wall
)
TASKS.register(
    "synthetic-propagation",
    "dvx.probe.tasks.davis:DavisPropagationTask",
    "synthetic instance-mask propagation (J&F)",
    dataset="synthetic",
)
TASKS.register(
    "synthetic-tracking",
    "dvx.probe.tasks.tracking:TrackingTask",
    "synthetic point tracking (AJ, delta_avg, OA)",
    dataset="synthetic",
)
