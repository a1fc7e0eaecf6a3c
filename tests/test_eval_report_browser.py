"""The HTML evaluation report, laid out by a real browser (Debian's chromium, driven by Playwright).

A small real evaluation with failing trials writes the report; Chromium loads it at 1280 px and
2400 px wide and the failed-trials table is measured: every column inside the viewport, no cell
squeezed into a letter-by-letter column, and each error names its step once.  Screenshots are kept
in ``out/test-artifacts/eval-report/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import ROOT, TABLETOP

ARTIFACTS = ROOT / "out" / "test-artifacts" / "eval-report"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# 'home' succeeds, then 'place' fails at once: nothing is held (a real failure, found by the skill)
FAILING = "version: 1\nsteps:\n  - home\n  - place: {target: bin}\n"
STEP = "place(target='bin')"
MAX_TEXT_HEIGHT = 300  # px of a cell's text: some lines; a letter-by-letter column is thousands
# the height of what a cell holds (a cell itself is as tall as its row's picture)
CONTENT_HEIGHT = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getBoundingClientRect().height; }"
MIN_TEXT_CELL_WIDTH = 90  # px


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a long folder name makes the replay commands long, as a CI checkout's paths are
    folder = tmp_path_factory.mktemp("a-rather-long-folder-name-for-the-evaluation-programs-of-this-cell")
    program = folder / "place_without_pick.yaml"
    program.write_text(FAILING)
    out = folder / "report"
    code = main(["eval", str(program), "--cell", str(TABLETOP), "--trials", "2", "--report", str(out),
                 "--animate", "0"])
    assert code == 0  # no --min-success: a run with failures still exits 0
    return out / "index.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed: apt-get install -y chromium (Debian package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip package playwright (the dev extra)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium"),
                               args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize("width", [1280, 2400])
def test_failed_trials_table_fits_and_reads(report: Path, browser: object, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    try:
        page.goto(report.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"report-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        rows = page.locator("h2:has-text('Failed trials') + table tr")
        assert rows.count() == 3, f"a heading row and 2 failed trials; see {shot}"
        headings = [rows.nth(0).locator("th").nth(i).inner_text() for i in range(rows.nth(0).locator("th").count())]
        assert headings[-1] == "replay"
        for r in range(rows.count()):
            cells = rows.nth(r).locator("th, td")
            for c in range(cells.count()):
                box = cells.nth(c).bounding_box()
                assert box is not None
                name = headings[c]
                assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, \
                    f"row {r} column '{name}' spans x {box['x']:.0f}..{box['x'] + box['width']:.0f} px, " \
                    f"outside the {width} px window; see {shot}"
                if r and name in ("failing step", "error", "replay"):
                    assert box["width"] >= MIN_TEXT_CELL_WIDTH, f"'{name}' is {box['width']:.0f} px wide; see {shot}"
                    height = cells.nth(c).evaluate(CONTENT_HEIGHT)
                    assert height <= MAX_TEXT_HEIGHT, \
                        f"'{name}' text is {height:.0f} px tall (wrapped letter by letter?); see {shot}"
            if r:
                text = rows.nth(r).inner_text()
                assert text.count(STEP) == 1, f"the step is named {text.count(STEP)} times in row {r}: {text!r}"
                replay = rows.nth(r).locator("code.replay").first.inner_text()
                assert replay.startswith("robocell eval ") and "--trial" in replay
    finally:
        page.close()


def test_error_names_the_step_once(report: Path) -> None:
    """The step is a field of the result; the error text itself does not repeat it."""
    html = report.read_text()
    assert "step 2 place" not in html
    assert "place: the gripper holds nothing" in html
