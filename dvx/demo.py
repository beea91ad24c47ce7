"""``dvx demo``: the twin study in miniature, then (``--tiny-models``) every tiny model through the pipeline.

The default demo (:func:`run_twin_demo`) is ``dvx twin study`` with one seed and a small budget: a training
world and an evaluation world, a video twin and an image twin of one architecture trained here (~100 steps
each), extracted with the untrained network into the feature store, probed (label propagation over a
T x block grid with its baselines, action, segmentation and depth heads) and reported with ``dvx report``.
Its numbers come from networks trained on this machine, so "trained beats untrained" is a real, if small,
finding; one seed has no interval, so the image-vs-video gap it prints is not a result (docs/twins.md).

``--tiny-models`` runs the pipeline demo over random-init tiny twins of other families (below):
1. generate a small synthetic dynamic world (``dvx synth``, colour-coded motion classes);
2. extract a tiny video diffusion model, a tiny image diffusion model and a tiny DINOv2 baseline at
   several timesteps, every block (``dvx extract``), and show what was cached (``dvx cache ls``);
3. label propagation from the cache: a DAVIS-style T x block J&F table with its baselines
   (``dvx probe --task synthetic-propagation``);
4. trained heads from the cache (action, segmentation, depth, object discovery);
5. pictures of the features (``dvx viz``) and the papers' Table-2-style summary, T x block heatmaps and
   Table 5 (cost), also as one HTML page (``dvx report --html``).

Everything lands in ``workdir``; running it again reuses the world, the cache and the results records.
Tiny models have random weights: the numbers exercise the pipeline, they say nothing about the models.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvx.config import ExtractConfig, ProbeConfig


@dataclass(frozen=True)
class DemoModel:
    name: str
    resolution: tuple[int, int]
    timesteps: tuple[int, ...]
    dense_blocks: tuple[str, ...]  # blocks for the dense probes (propagation, segmentation, depth)
    global_block: str  # block for action recognition (seed 002: up.1 / an early-middle layer)


MODELS = (
    DemoModel("tiny-svd", (64, 128), (0, 50, 200), ("up.1", "up.2"), "up.1"),
    DemoModel("tiny-sd", (64, 128), (0, 50, 200), ("up.1", "up.2"), "up.1"),
    DemoModel("tiny-dinov2", (56, 112), (0,), ("layer.1", "layer.3"), "layer.1"),
)
HEAD_TASKS = ("synthetic-action", "synthetic-seg", "synthetic-depth", "synthetic-discovery")


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path
    models: tuple[DemoModel, ...] = MODELS
    videos: int = 21
    frames: int = 8
    size: tuple[int, int] = (64, 96)
    epochs: int = 10
    fresh: bool = False
    tiny_models: bool = False  # the random-weight pipeline demo instead of the twin study
    twin_steps: int = 100


def _say(msg: str) -> None:
    print(msg, flush=True)


#: the stamp beside the demo's study: the settings that filled it
DEMO_STAMP = ".demo-settings.json"
#: what the miniature study's numbers mean and do not (printed under its table)
MEANING = (
    "What these numbers mean: networks trained here for {steps} steps (one seed) next to the same network "
    "untrained and three references at the same stride (copy-first-mask, pixel colour, oracle ids), so a "
    "trained twin above the untrained one shows the pipeline measuring learned structure (the 3-seed study "
    "at 600 steps also clears copy-first-mask); what they do not mean: one seed has no interval, so the "
    "video-minus-image gap is not a finding, and nothing here speaks for SVD or any model at scale "
    "(`dvx twin study --seeds 3`; docs/twins.md)."
)


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = _say) -> None:
    """The twin study in miniature (default), or the random-weight tiny-model pipeline demo."""
    if cfg.tiny_models:
        run_models_demo(cfg, say)
    else:
        run_twin_demo(cfg, say)


def _replace_if_other_settings(study: Any, say: Callable[[str], None]) -> None:
    """A demo folder left by a dvx whose study had other settings (other worlds, VAE, steps) would make the
    study refuse it: the demo's folder is its own, so it is started afresh instead (a stamp file beside the
    study says which settings filled it)."""
    root = study.root
    stamp = root / DEMO_STAMP
    want = json.dumps(study.to_json(), sort_keys=True, default=str)
    if root.exists():
        try:
            same = stamp.read_text() == want
        except OSError:
            same = False
        if not same:
            say(f"== {root} holds a demo study with other settings (an earlier dvx); starting it afresh")
            shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)


def run_twin_demo(cfg: DemoConfig, say: Callable[[str], None] = _say) -> None:
    from dvx.report.runner import ReportConfig, run_report
    from dvx.store.inventory import summarize
    from dvx.store.root import FeatureStore
    from dvx.twin.study import StudyConfig, run_study

    work = cfg.workdir.expanduser()
    if cfg.fresh and work.exists():
        shutil.rmtree(work)
    study = StudyConfig(
        out=str(work / "twins"),
        seeds=1,
        steps=cfg.twin_steps,
        save_every=max(cfg.twin_steps // 2, 1),
        train_videos=24,
        vae_steps=100,  # the shared VAE, trained briefly (the study's default is 300)
        timesteps=(50, 200),
        blocks=("up.1", "up.2", "up.3"),
        head_epochs=cfg.epochs,
        threads=1,  # tiny tensors: one thread per process is faster than two on a shared 2-core CPU
        progress=True,  # training steps and extraction: a bar on a terminal, plain lines in a log
    )
    _replace_if_other_settings(study, say)
    say("== the image-vs-video twin study in miniature (dvx twin study --seeds 1; docs/twins.md)")
    report = run_study(study, log=lambda line: say(line) if not line.startswith(("#", "|", "\n")) else None)
    for line in report.markdown.splitlines():
        say(f"   {line}")
    say(MEANING.format(steps=cfg.twin_steps))
    store = study.store
    say(f"== the feature store it filled ({store})")
    for g in summarize(FeatureStore.open(str(store), mode="r")):
        say(f"   {g.dataset}/{g.recipe}: {len(g.videos)} videos, T={g.timesteps}, {len(g.blocks)} blocks")
    files = run_report(
        ReportConfig(store=str(store), out=str(work / "report"), results=str(study.results)),
        log=lambda _: None,
    )
    say(f"== dvx report: {files.markdown} (tables and T x block heatmaps of every probe record)")


def run_models_demo(cfg: DemoConfig, say: Callable[[str], None] = _say) -> None:
    from dvx.data.synthetic import SynthConfig, write_world
    from dvx.extract.runner import run_extract
    from dvx.probe.runner import run_probe
    from dvx.report.runner import ReportConfig, run_report
    from dvx.results import Grid, ResultRecord
    from dvx.store.inventory import summarize
    from dvx.store.root import FeatureStore

    work = cfg.workdir.expanduser()
    if cfg.fresh and work.exists():
        shutil.rmtree(work)
    world, store, results = work / "world", work / "store", work / "results"

    say(f"== 1. synthetic world -> {world}")
    if (world / "world.json").exists():
        say("   exists; reused")
    else:
        s = write_world(
            SynthConfig(
                out=world,
                videos=cfg.videos,
                frames=cfg.frames,
                height=cfg.size[0],
                width=cfg.size[1],
                seed=0,
                colour_coded=True,
            )
        )
        say(
            f"   {s.videos} videos x {cfg.frames} frames ({s.train} train, {s.test} test), layouts: "
            f"{', '.join(s.layouts)}"
        )

    say(f"== 2. extract {', '.join(m.name for m in cfg.models)} (every block) -> {store}")
    for m in cfg.models:
        rep = run_extract(
            ExtractConfig(
                model=m.name,
                dataset="synthetic",
                data_root=str(world),
                store=str(store),
                timesteps=m.timesteps,
                resolution=m.resolution,
                batch_size=8,
                progress=True,  # a bar on a terminal, plain lines with ETA in a log
            ),
            log=lambda _: None,
        )
        say(f"   {rep.summary()}")
    for g in summarize(FeatureStore.open(str(store), mode="r")):
        shape = f"{len(g.videos)} videos, T={g.timesteps}, {len(g.blocks)} blocks"
        say(f"   cached {g.dataset}/{g.recipe}: {shape}")

    def probe(
        task: str, m: DemoModel, blocks: tuple[str, ...], timesteps: tuple[int, ...], **opts: object
    ) -> list[ResultRecord]:
        pcfg = ProbeConfig(
            task=task,
            store=str(store),
            model=m.name,
            data_root=str(world),
            dataset="synthetic",
            timesteps=timesteps,
            blocks=blocks,
            results=str(results),
            out=str(work / "probes"),
            device="cpu",
            progress=True,
            options=opts,
        )
        return run_probe(pcfg, log=lambda _: None)

    say("== 3. label propagation from the cache (DAVIS protocol, J&F; the backbone is not loaded)")
    from dvx.probe.tasks.davis import baseline_lines

    for m in cfg.models:
        recs = probe("synthetic-propagation", m, m.dense_blocks, m.timesteps, preset="dino")
        say(f"   {m.name}:")
        for line in Grid.of(recs).render().splitlines():
            say(f"     {line}")
        for line in baseline_lines(recs):
            say(f"     {line}")

    say(f"== 4. trained heads from the cache ({', '.join(HEAD_TASKS)})")
    for m in cfg.models:
        ts: tuple[int, ...] = (50,) if 50 in m.timesteps else m.timesteps[:1]
        for task in HEAD_TASKS:
            blocks = (m.global_block,) if task == "synthetic-action" else m.dense_blocks[-1:]
            probe(task, m, blocks, ts, epochs=cfg.epochs, num_workers=0)
        say(f"   {m.name}: trained")
    say("== 5. pictures of the cached features (dvx viz: PCA and K-means, PNG grid and mp4), the report")
    from dvx.viz.runner import VizConfig, run_viz

    viz = run_viz(
        VizConfig(
            store=str(store),
            dataset="synthetic",
            data_root=str(world),
            models=",".join(m.name for m in cfg.models),
            videos="synth_000001",
            blocks=",".join(sorted({m.dense_blocks[-1] for m in cfg.models})),
            out=str(work / "viz"),
            progress=False,
        ),
        log=lambda _: None,
    )
    say(f"   {viz.grids[0]} and {len(viz.videos)} mp4 video(s) beside it")
    files = run_report(
        ReportConfig(
            store=str(store), out=str(work / "report"), results=str(results), html=True, viz=str(work / "viz")
        ),
        log=lambda _: None,
    )
    for line in files.table2.splitlines():
        say(f"   {line}")
    if files.table5:
        say("   cost of extraction (Table 5; measured in this process, tiny twins: plumbing):")
        for line in files.table5.splitlines():
            say(f"   {line}")
    say(f"   report with T x block heatmaps: {files.markdown}")
    say(f"   the same as one self-contained page: {files.html}")
