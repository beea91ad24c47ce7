"""The point-tracking probe tasks (tapvid-davis, tapvid-kinetics, tapvid-rgb-stacking, synthetic-tracking):
options and records, the perfect-feature control through the task, a T x block x head sweep in one
command rendered by ``dvx report``, q/k matching from the caches of tiny-svd, tiny-sd and tiny-wan, and
the bad inputs (one line each). Tiny models have random weights: their AJ is plumbing, not science."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dvx.data.synthetic import SynthConfig, SyntheticWorld, write_world
from dvx.data.tapvid import RGB_STACKING_FILE, export_tapvid_davis, tapvid_examples, write_pickle
from dvx.errors import ConfigError
from dvx.probe.tapvid_metrics import METRICS
from dvx.probe.tasks.tracking import TrackingOptions, key_block
from dvx.store.recipe import Recipe
from dvx.store.root import FeatureStore
from dvx.store.writer import VideoWriter
from tests.conftest import extract_tiny, run_cli
from tests.probe.test_propagation_tasks import write_pixel_store
from tests.probe.test_tracking import one_hot_features


def tapvid_root(dataset: str, world: Path, out: Path) -> Path:
    """The synthetic world's videos and tracks in the files the dataset reader ``dataset`` reads (the
    world itself for ``synthetic``; TAP-Vid pickles for the three TAP-Vid readers)."""
    examples = tapvid_examples(SyntheticWorld(world))
    if dataset == "synthetic":
        return world
    if dataset == "tapvid-davis":
        export_tapvid_davis(SyntheticWorld(world), out)
    elif dataset == "tapvid-rgb-stacking":
        write_pickle(out / RGB_STACKING_FILE, list(examples.values()))
    elif dataset == "tapvid-kinetics":
        write_pickle(out / "0000_of_0001.pkl", list(examples.values()))
    else:
        raise ValueError(f"no point-tracking layout for {dataset}")
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tracking-task") / "world"
    write_world(SynthConfig(out=out, videos=3, frames=6, height=32, width=32, seed=7, brick_wall_every=0))
    return out


def common(store: Path, world: Path, tmp: Path, model: str = "pixels") -> list[str]:
    return [
        "--store", str(store), "--model", model, "--data-root", str(world), "--device", "cpu",
        "--results", str(tmp / "results"),
    ]  # fmt: skip


def probe_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict]:
    code, out, err = run_cli(["probe", "--task", "synthetic-tracking", *args, "--json"], capsys)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def write_feature_store(world: Path, store: Path, blocks: dict[str, str]) -> None:
    """A "perfect" model's store: ``blocks`` name -> "onehot" (the one-hot of the true correspondence at
    the frame size) or "noise" (random features of the same shape)."""
    ds = SyntheticWorld(world)
    h, w = int(ds.world["height"]), int(ds.world["width"])
    recipe = Recipe(model="perfect", family="pixels", weights="1" * 64, dtype="float32", resolution=(h, w),
                    clip_len=None, latent="none")  # fmt: skip
    group = FeatureStore.open(str(store), mode="a").create_group("synthetic", recipe)
    rng = np.random.default_rng(0)
    for ref in ds.videos():
        video = ds.load(ref)
        onehot = one_hot_features(ds, ref).astype(np.float32)
        n = len(onehot)
        vw = VideoWriter(group, ref.id, (50,), tuple(blocks), chunk_frames=n)
        for name, kind in blocks.items():
            feats = onehot if kind == "onehot" else rng.standard_normal(onehot.shape).astype(np.float32)
            vw.write(50, name, 0, feats, n)
        vw.commit(video.frame_names, [[i] for i in range(n)], video.frames.shape[1:3])


def test_options_settings_and_query_key_names() -> None:
    opts = TrackingOptions(query_mode="strided", match="qk", radius=0)
    s = opts.settings()
    assert (s["query_mode"], s["query_stride"], s["match"], s["soft_argmax_radius"]) == (
        "strided",
        5,
        "qk",
        0,
    )
    assert "max_bytes" not in s  # the result does not depend on it: not part of the record key
    assert key_block("up.1.s0.0.attn1.q", "qk") == "up.1.s0.0.attn1.k"
    assert key_block("layer.2.attn1.q.h1", "qk") == "layer.2.attn1.k.h1"
    assert key_block("up.2", "feature") == "up.2"
    with pytest.raises(ConfigError, match=r"'up\.2' is no <layer>\.q"):
        key_block("up.2", "qk")
    with pytest.raises(ConfigError, match="--occlusion-threshold is a cosine"):
        TrackingOptions(occlusion_threshold=1.5)
    with pytest.raises(ConfigError, match="--radius"):
        TrackingOptions(radius=-1)


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_perfect_features_through_the_task_score_aj_one_and_eval_agrees(
    world: Path, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control through the whole task: one-hot features of the true correspondence score AJ =
    delta_avg = OA = 1.0 (every figure), random features of the same shape do not, and `dvx eval
    synthetic-tracking` on what the probe wrote gives the same metrics."""
    store = tmp_path / "s"
    write_feature_store(world, store, {"onehot": "onehot", "noise": "noise"})
    args = [*common(store, world, tmp_path, "perfect"), "--out", str(tmp_path / "out"), "--query-mode", mode]
    recs = {r["block"]: r for r in probe_json([*args, "--blocks", "onehot,noise"], capsys)}
    perfect, noise = recs["onehot"], recs["noise"]
    assert all(perfect["metrics"][k] == 1.0 for k in METRICS), perfect["metrics"]
    assert noise["metrics"]["AJ"] < 0.5
    assert perfect["main_metric"] == "AJ" and perfect["higher_is_better"] is True
    assert perfect["details"]["query_mode"] == mode and perfect["details"]["matching"] == "feature"
    assert perfect["probe"]["query_mode"] == mode and perfect["videos"] == 3
    code, out, _ = run_cli(
        ["eval", "synthetic-tracking", "--pred", str(tmp_path / "out"), "--data-root", str(world), "--json"],
        capsys,
    )
    assert code == 0
    evaluated = {r["block"]: r for r in map(json.loads, out.splitlines())}
    for block, rec in recs.items():
        assert evaluated[block]["metrics"] == rec["metrics"]
        assert evaluated[block]["details"]["per_video"] == rec["details"]["per_video"]
    # dvx eval tapvid (any tracker's files) on the same folder agrees too
    [folder] = (tmp_path / "out").glob("synthetic-tracking/synthetic/perfect@*/T50/noise")
    code, out, _ = run_cli(
        ["eval", "tapvid", "--pred", str(folder), "--gt", str(world), "--query-mode", mode, "--json"], capsys
    )
    assert code == 0 and json.loads(out)["AJ"] == noise["metrics"]["AJ"]


@pytest.mark.parametrize("dataset", ["tapvid-davis", "tapvid-kinetics", "tapvid-rgb-stacking"])
def test_the_tapvid_tasks_read_their_pickles(
    world: Path, tmp_path: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same tracks in each TAP-Vid pickle form give each TAP-Vid task the synthetic task's figures."""
    root = tapvid_root(dataset, world, tmp_path / "gt")
    write_pixel_store(dataset, root, tmp_path / "s", resolution=(32, 32))
    write_pixel_store("synthetic", world, tmp_path / "s", resolution=(32, 32))
    [synth] = probe_json(common(tmp_path / "s", world, tmp_path), capsys)
    code, out, err = run_cli(
        ["probe", "--task", dataset, *common(tmp_path / "s", root, tmp_path), "--json"], capsys
    )
    assert code == 0, err
    rec = json.loads(out)
    assert rec["task"] == dataset and rec["dataset"] == dataset and rec["videos"] == 3
    assert rec["metrics"] == synth["metrics"]


def test_a_dataset_without_point_tracks_is_one_line(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pixel_store("jhmdb", world, tmp_path / "s", resolution=(32, 32))
    code, _, err = run_cli(
        [
            "probe",
            "--task",
            "synthetic-tracking",
            "--dataset",
            "jhmdb",
            *common(tmp_path / "s", world, tmp_path),
        ],
        capsys,
    )
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert "task 'synthetic-tracking' needs point tracks; dataset 'jhmdb'" in err


def test_qk_matching_bad_blocks_are_one_line(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A q block whose k block is not cached, and a block that is no q block under --match qk."""
    store = tmp_path / "s"
    write_feature_store(
        world, store, {"layer.0.attn1.q": "onehot", "layer.0.attn1.q.h1": "onehot", "hidden": "onehot"}
    )
    base = [
        "probe",
        "--task",
        "synthetic-tracking",
        *common(store, world, tmp_path, "perfect"),
        "--match",
        "qk",
    ]
    code, _, err = run_cli([*base, "--blocks", "layer.0.attn1.q"], capsys)
    [line] = [x for x in err.splitlines() if x.startswith("dvx: error")]  # after the "to compute" line
    assert code != 0 and "Traceback" not in err and err.endswith(line + "\n")
    assert "layer.0.attn1.q is matched against layer.0.attn1.k, which the cache lacks at T=50" in line
    assert line.endswith("(the extract option --blocks 'layer.0.attn1.*')")
    code, _, err = run_cli([*base, "--blocks", "layer.0.attn1.q.h1"], capsys)
    [line] = [x for x in err.splitlines() if x.startswith("dvx: error")]
    assert code != 0 and "against layer.0.attn1.k.h1" in line and "'layer.0.attn1.*' with --heads 1)" in line
    code, _, err = run_cli([*base, "--blocks", "hidden"], capsys)
    [line] = [x for x in err.splitlines() if x.startswith("dvx: error")]
    assert code != 0 and "Traceback" not in err and "'hidden' is no <layer>.q" in line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "hidden", "layer"),
    [("tiny-svd", "up.3", "up.3.s1.0.attn1"), ("tiny-sd", "up.3", "up.3.s1.0.attn1"),
     ("tiny-wan", "layer.3", "layer.2.attn1")],
)  # fmt: skip
def test_synthetic_tracking_from_tiny_model_caches(
    model: str, hidden: str, layer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hidden-state and q/k blocks extracted in one run, tracked feature-to-feature and query-to-key
    (a time-compressing model, tiny-wan, included); eval of the written files gives the same metrics."""
    world = tmp_path / "world"
    frames = {"tiny-svd": 14, "tiny-wan": 9}.get(model, 4)
    write_world(SynthConfig(out=world, videos=2, frames=frames, height=32, width=32, seed=5))
    extract_tiny(model, "synthetic", world, tmp_path / "store", (hidden, f"{layer}.*"))
    args = [*common(tmp_path / "store", world, tmp_path, model), "--out", str(tmp_path / "out")]
    [feat] = probe_json([*args, "--blocks", hidden], capsys)
    [qk] = probe_json([*args, "--blocks", f"{layer}.q", "--match", "qk"], capsys)
    assert feat["details"]["matching"] == "feature" and feat["details"]["key_block"] == hidden
    assert qk["details"]["matching"] == "query-key" and qk["details"]["key_block"] == f"{layer}.k"
    assert qk["probe"]["match"] == "qk" and feat["probe"]["match"] == "feature"
    for rec in (feat, qk):
        assert rec["videos"] == 2 and rec["details"]["n_queries"] > 0
        assert all(0.0 <= rec["metrics"][k] <= 1.0 for k in ("AJ", "delta_avg", "OA"))
    code, out, _ = run_cli(
        ["eval", "synthetic-tracking", "--pred", str(tmp_path / "out"), "--data-root", str(world), "--json"],
        capsys,
    )
    evaluated = {r["block"]: r["metrics"] for r in map(json.loads, out.splitlines())}
    assert code == 0 and evaluated == {hidden: feat["metrics"], f"{layer}.q": qk["metrics"]}


@pytest.mark.slow
def test_a_t_by_head_sweep_in_one_command_is_one_report_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dvx probe --task synthetic-tracking --timesteps 50,200 --blocks <q heads> --match qk`: one record
    per (T, head block), and `dvx report` shows them as one T x block grid with its heatmap, the best
    (T, head) chosen for the models x tasks table."""
    world = tmp_path / "world"
    write_world(SynthConfig(out=world, videos=2, frames=9, height=32, width=32, seed=5))
    extract_tiny("tiny-wan", "synthetic", world, tmp_path / "store", ("layer.1.attn1.*",),
                 timesteps=(50, 200), heads=(0, 1))  # fmt: skip
    heads = [f"layer.1.attn1.q.h{h}" for h in (0, 1)]
    args = [*common(tmp_path / "store", world, tmp_path, "tiny-wan"), "--match", "qk"]
    code, out, err = run_cli(
        [
            "probe",
            "--task",
            "synthetic-tracking",
            *args,
            "--timesteps",
            "50,200",
            "--blocks",
            ",".join(heads),
        ],
        capsys,
    )
    assert code == 0, err
    assert "layer.1.attn1.q.h0 -> layer.1.attn1.k.h0" in out and "random weights" in out
    recs = probe_json([*args, "--timesteps", "50,200", "--blocks", ",".join(heads)], capsys)  # cached
    assert sorted((r["T"], r["block"]) for r in recs) == [(t, b) for t in (50, 200) for b in heads]
    code, _, err = run_cli(
        ["report", "--store", str(tmp_path / "store"), "--results", str(tmp_path / "results"),
         "--out", str(tmp_path / "rep")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### tiny-wan" in md and "synthetic-tracking" in md
    assert f"| T \\ block | {heads[0]} | {heads[1]} |" in md
    for r in recs:
        row = next(line for line in md.splitlines() if line.startswith(f"| {r['T']} |"))
        assert f"{r['metrics']['AJ']:.4f}" in row
    [chosen] = [line for line in md.splitlines() if line.startswith("- tiny-wan / synthetic-tracking: T=")]
    by_cell = {f"T={r['T']}, {r['block']}": r["metrics"]["AJ"] for r in recs}
    assert by_cell[chosen.partition(": ")[2]] == max(by_cell.values())
    assert list((tmp_path / "rep" / "heatmaps").glob("tiny-wan_synthetic-tracking*.png"))


def test_the_documented_tracking_commands_parse() -> None:
    """Every command of docs/probes.md's tracking-task usage block parses as `dvx` would parse it."""
    from tests.cli.test_cache import parse

    text = (Path(__file__).parents[2] / "docs" / "probes.md").read_text()
    block = text.split("### The tracking tasks", 1)[1].split("```", 2)[1]
    commands = [c.split("  #")[0] for c in block.replace("\\\n", " ").splitlines() if c.startswith("dvx ")]
    assert len(commands) == 6
    for command in commands:
        parse(command)


def test_a_sweep_reads_each_video_s_tracks_once_and_equals_track_from_cache(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task loops videos outermost (a Kinetics shard is read once per video, not once per (T, block))
    and gives track_from_cache's figures for every pair."""
    from dvx.config import ProbeConfig
    from dvx.probe.runner import run_probe
    from dvx.probe.track_cache import track_from_cache

    store = tmp_path / "s"
    write_feature_store(world, store, {"onehot": "onehot", "noise": "noise", "noise2": "noise"})
    reads: list[str] = []
    real = SyntheticWorld.point_tracks
    monkeypatch.setattr(
        SyntheticWorld, "point_tracks", lambda self, ref: reads.append(ref.id) or real(self, ref)
    )
    cfg = ProbeConfig(task="synthetic-tracking", store=str(store), model="perfect", data_root=str(world),
                      results=str(tmp_path / "r"), device="cpu", options={"radius": 1})  # fmt: skip
    records = run_probe(cfg, log=lambda _: None)
    assert len(records) == 3 and len(reads) == len(set(reads)) == 3
    group = FeatureStore.open(str(store), mode="r").find("synthetic", "perfect", None)
    opts = TrackingOptions(radius=1)
    for rec in records:
        direct = track_from_cache(group, SyntheticWorld(world), 50, rec.block, opts.tracking()).record()
        assert rec.metrics == {k: direct[k] for k in METRICS}
        assert rec.details["per_video"] == direct["per_video"]


@pytest.mark.parametrize(
    "task", ["tapvid-davis", "tapvid-kinetics", "tapvid-rgb-stacking", "synthetic-tracking"]
)
def test_help_lists_the_tracking_options(task: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["probe", "--task", task, "--help"], capsys)
    assert code == 0 and f"Options of task {task}" in out
    for flag in ("--query-mode [first|strided]", "--match [feature|qk]", "--radius INTEGER",
                 "--temperature FLOAT", "--occlusion-threshold FLOAT", "--max-bytes INTEGER"):  # fmt: skip
        assert flag in out, flag
    code, out, _ = run_cli(["eval", task, "--help"], capsys)
    assert code == 0 and "--query-mode [first|strided]" in out and "--match" not in out
