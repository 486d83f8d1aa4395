"""``fanwatch demo --in-process``: the same fleet and cloud in one process, and its report in a browser.

One short run (two devices, six simulated minutes at timeScale 60) in a fresh working folder: it
writes to ``out/demo-in-process`` and never over the real run's ``out/demo``; its lake holds every
reading the devices sent exactly once; the stall is caught. Then its report is opened offline in
headless Chromium, driven with Selenium: every chart drew its data (plotly's traces have points, and
SVG marks exist on the page), the page asked for nothing over the network and logged no error, and a
screenshot is saved next to the report. Debian's ``chromium`` and ``chromium-driver`` always match;
Selenium Manager's download cannot work offline, so the driver's path is given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
DRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")

#: Per chart: its id, the traces it has, the points they hold, and the marks plotly drew in SVG.
CHARTS_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
  id: el.id,
  traces: el.data.length,
  points: el.data.reduce((n, t) => n + (t.x ? t.x.filter(v => v !== null).length : 0), 0),
  laidOut: Boolean(el._fullLayout),
  marks: el.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.point').length,
}));
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """The working folder, the output and the exit status of the run."""
    cwd = tmp_path_factory.mktemp("in-process")
    real = cwd / "out" / "demo"
    real.mkdir(parents=True)
    (real / "report.html").write_text("the real run's report")
    command = [sys.executable, "-m", "fanwatch", "demo", "--in-process", "--devices", "2", "--minutes", "6"]
    command += ["--warmup-minutes", "3", "--time-scale", "60"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=cwd)
    return cwd, done.stdout + done.stderr, done.returncode


@pytest.fixture(scope="module")
def report(run: tuple[Path, str, int]) -> Path:
    page = run[0] / "out" / "demo-in-process" / "report.html"
    assert page.is_file(), f"the demo wrote no report:\n{run[1]}"
    return page


def test_it_runs_the_same_story_into_its_own_folder(run: tuple[Path, str, int]) -> None:
    cwd, output, returncode = run
    out = cwd / "out" / "demo-in-process"
    assert returncode == 0, output
    assert (cwd / "out" / "demo" / "report.html").read_text() == "the real run's report"
    assert "in one process (no Greengrass core, no broker)" in output
    assert "stored in the lake: nothing lost, nothing twice" in output
    stall = next(line for line in output.splitlines() if "demo-pi-001/fan1  stall" in line)
    assert "both" in stall  # the edge's stall alert and the forest's anomaly
    assert (out / "fleet.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in (out / "lake").iterdir()) == ["events", "readings"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(
            f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {DRIVER}): apt-get install them"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--window-size=1400,2200",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_every_chart_renders_with_data_offline_and_the_page_logs_no_error(report: Path, browser: Any) -> None:
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get(report.as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.querySelectorAll('.js-plotly-plot')).every(el => el._fullLayout)"
        )
    )
    charts = browser.execute_script(CHARTS_JS)
    expected = 1 + 6  # the timeline, then one chart per fan (2 devices of 3 fans)
    assert len(charts) == expected, charts
    empty = [c["id"] for c in charts if not (c["laidOut"] and c["points"] > 0 and c["marks"] > 0)]
    assert empty == [], f"charts drawn without data: {empty}"
    tiles = browser.execute_script("return document.querySelectorAll('.tile').length")
    assert tiles == 6  # the fleet overview: one tile per fan
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith('data:') && !n.startsWith('file:'))"
    )
    assert fetched == []  # everything is inlined: the page works offline
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(int(height), 12_000))
    shot = report.with_name("report-chromium.png")
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
