"""``dvx report --html``: one self-contained page; every image inlined and decodable; checked in a real
headless browser (Chromium from the system packages) where one is installed."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dvx.report.html import markdown_to_html
from dvx.report.runner import ReportConfig, ReportFiles, run_report
from dvx.results import ResultsDir
from tests.report.test_report import RECORDS, STORE


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("href", "src"):
            if a.get(key) and tag != "img":
                self.links.append(str(a[key]))


def _report(tmp_path: Path) -> ReportFiles:
    results = ResultsDir(tmp_path / "results")
    for r in RECORDS:
        results.save(r)
    viz = tmp_path / "viz"
    viz.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 16), (200, 30, 30)).save(viz / "grid.png")
    (viz / "grid.txt").write_text("random-weight tiny model: the picture exercises the plumbing")
    return run_report(
        ReportConfig(
            store=STORE, out=str(tmp_path / "rep"), results=str(tmp_path / "results"), html=True, viz=str(viz)
        ),
        log=lambda _: None,
    )


def test_the_page_is_self_contained_and_every_image_decodes(tmp_path: Path) -> None:
    from PIL import Image

    files = _report(tmp_path)
    assert files.html is not None
    text = files.html.read_text()
    page = _Page()
    page.feed(text)
    assert len(page.images) == len(files.heatmaps) + 1  # every heatmap and the viz figure
    for src in page.images:
        m = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        img = Image.open(io.BytesIO(base64.b64decode(m.group(1))))
        img.load()
        assert img.width > 0 and img.height > 0
    assert not page.links and "script" not in page.tags  # nothing to fetch, nothing to run
    assert "<table>" in text and "<th>model</th>" in text and "random-weight tiny model" in text


def test_a_missing_image_is_named_not_a_broken_reference(tmp_path: Path) -> None:
    page = markdown_to_html("# t\n\n![gone](nope.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", tmp_path)
    assert "(missing image nope.png)" in page and "<img" not in page and "<td>1</td>" in page


_PROBE = """<script>
window.__errs = [];
window.addEventListener("error", e => window.__errs.push(String(e.message || e.type)), true);
const _err = console.error; console.error = (...a) => { window.__errs.push(a.join(" ")); _err(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const d = document.createElement("pre");
  d.textContent = "DVXCHECK images=" + imgs.length + " bad=" + bad + " errors=" + window.__errs.length;
  document.body.appendChild(d);
});
</script>"""


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on this machine (apt-get install chromium); the pure-Python check still ran")


def _load(browser: str, page: Path) -> tuple[str, str]:
    """Open ``page`` in headless Chromium: (the DOM after load, the browser's log)."""
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def _checked(page: Path, tmp_path: Path) -> tuple[str, str]:
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + _PROBE, 1))
    dom, log = _load(_browser(), probed)
    m = re.search(r"DVXCHECK images=(\d+) bad=(\d+) errors=(\d+)", dom)
    assert m, dom[-2000:]
    return m.group(0), log


@pytest.mark.slow
def test_the_page_loads_in_a_headless_browser_without_errors_and_shows_every_image(tmp_path: Path) -> None:
    files = _report(tmp_path)
    assert files.html is not None
    check, log = _checked(files.html, tmp_path)
    assert check == f"DVXCHECK images={len(files.heatmaps) + 1} bad=0 errors=0"
    assert ":CONSOLE" not in log  # nothing logged to the console


@pytest.mark.slow
def test_the_browser_check_catches_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head></head><body><img src="data:image/png;base64,AAAA">'
        '<script>console.error("boom")</script></body></html>'
    )
    check, log = _checked(bad, tmp_path)
    assert check == "DVXCHECK images=1 bad=1 errors=2" and ":CONSOLE" in log


def test_figures_already_in_the_reports_viz_folder_are_included_without_viz(tmp_path: Path) -> None:
    from PIL import Image

    results = ResultsDir(tmp_path / "results")
    for r in RECORDS:
        results.save(r)
    (tmp_path / "rep" / "viz").mkdir(parents=True)
    Image.new("RGB", (8, 8), (0, 90, 0)).save(tmp_path / "rep" / "viz" / "v_grid.png")
    files = run_report(
        ReportConfig(store=STORE, out=str(tmp_path / "rep"), results=str(tmp_path / "results"), html=True),
        log=lambda _: None,
    )
    assert "![v_grid](viz/v_grid.png)" in files.markdown.read_text()
    assert files.html is not None and files.html.read_text().count("<img") == len(files.heatmaps) + 1
