"""The figures of docs/viz.md, generated (never drawn by hand): ``python -m benchmarks.make_figures``.

On a small synthetic world it extracts three tiny twins (random weights: every picture and number here
exercises the plumbing and says nothing about any model), runs label propagation from the cache, then
writes into ``--out`` (default docs/figures/):

- ``viz_grid.png``: ``dvx viz``'s PNG grid (input, propagated masks, PCA and K-means rows per model);
- ``viz_video.mp4``, ``viz_video_frame.png``: one of ``dvx viz``'s side-by-side videos, its middle frame;
- ``heatmap.png``: a ``dvx report`` T x block heatmap (shared colour scale, values in the cells);
- ``table5.md``: ``dvx report``'s Table 5 (cost of extraction, measured on the machine that ran this);
- ``report_html.png``: a screenshot of ``report.html`` in headless Chromium (only where one is installed).

Not a benchmark (run_all does not run it); it lives here beside the other scripts that write docs/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks._common import REPO

MODELS = (  # name, resolution, T, blocks
    ("tiny-svd", (64, 96), (50,), ("up.1", "up.2")),
    ("tiny-sd", (64, 96), (0, 50), ("up.1", "up.2")),
    ("tiny-dinov2", (56, 84), (0,), ("layer.1", "norm")),
)


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "figures"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from dvx.config import ExtractConfig, ProbeConfig
    from dvx.data.synthetic import SynthConfig, write_world
    from dvx.extract.runner import run_extract
    from dvx.probe.runner import run_probe
    from dvx.report.runner import ReportConfig, run_report
    from dvx.viz.runner import VizConfig, run_viz

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dvx-figures-") as tmp:
        work = Path(tmp)
        world, store, results = work / "world", work / "store", work / "results"
        write_world(
            SynthConfig(out=world, videos=4, frames=8, height=64, width=96, seed=0, colour_coded=True)
        )
        for name, res, ts, blocks in MODELS:
            run_extract(
                ExtractConfig(
                    model=name,
                    dataset="synthetic",
                    data_root=str(world),
                    store=str(store),
                    timesteps=ts,
                    resolution=res,
                    blocks=blocks,
                    threads=args.threads,
                    progress=False,
                ),
                log=lambda _: None,
            )
            run_probe(
                ProbeConfig(
                    task="synthetic-propagation",
                    store=str(store),
                    model=name,
                    data_root=str(world),
                    dataset="synthetic",
                    timesteps=ts,
                    blocks=blocks,
                    results=str(results),
                    out=str(work / "preds"),
                    device="cpu",
                    progress=False,
                    options={"preset": "dino"},
                ),
                log=lambda _: None,
            )
        [fp] = [
            p.name
            for p in (work / "preds" / "synthetic-propagation" / "synthetic").iterdir()
            if "tiny-svd" in p.name
        ]
        preds = work / "preds" / "synthetic-propagation" / "synthetic" / fp / "T50" / "up.2"
        viz = run_viz(
            VizConfig(
                store=str(store),
                dataset="synthetic",
                data_root=str(world),
                models="tiny-svd,tiny-sd,tiny-dinov2",
                videos="synth_000001",
                timesteps=None,
                blocks=None,
                frames=4,
                predictions=str(preds),
                out=str(work / "viz"),
                progress=False,
                cell_height=96,
            ),
            log=lambda _: None,
        )
        shutil.copyfile(viz.grids[0], out / "viz_grid.png")
        video = next(v for v in viz.videos if "tiny-svd" in v.name)
        shutil.copyfile(video, out / "viz_video.mp4")
        _middle_frame(video, out / "viz_video_frame.png")
        files = run_report(
            ReportConfig(
                store=str(store),
                out=str(work / "report"),
                results=str(results),
                html=True,
                viz=str(work / "viz"),
                progress=False,
            ),
            log=lambda _: None,
        )
        heat = next(p for p in files.heatmaps if p.name.startswith("tiny-sd_"))
        shutil.copyfile(heat, out / "heatmap.png")
        (out / "table5.md").write_text(
            "Table 5 as `dvx report` writes it, from `python -m benchmarks.make_figures` (tiny twins with "
            "random weights on a shared CPU: plumbing, not a measurement of any real model).\n\n"
            + files.table5
            + "\n"
        )
        browser = _browser()
        if browser and files.html is not None:
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--window-size=1200,1500", f"--screenshot={out / 'report_html.png'}", files.html.as_uri()],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        else:
            print("no Chromium: report_html.png not written")
    for p in sorted(out.iterdir()):
        print(p.relative_to(REPO) if p.is_relative_to(REPO) else p)
    return 0


def _middle_frame(video: Path, png: Path) -> None:
    import av
    from PIL import Image

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    Image.fromarray(frames[len(frames) // 2]).save(png)


if __name__ == "__main__":
    raise SystemExit(main())
