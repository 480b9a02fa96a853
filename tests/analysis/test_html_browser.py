"""report.html and the history page in a real browser (headless Chromium through Selenium):
no console errors, offline, the verdict rows are summary.json's claims, every figure's traces
hold records.jsonl's data, and a hover on a point shows its case.

Needs Chromium and ChromeDriver (Debian: `apt-get install chromium chromium-driver`) and the
`selenium` package ([test] extra); skips, saying which is missing, where they are not.
"""

import shutil
from pathlib import Path

import pytest

from bench.reader import read_records
from support import reference_page

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser",
                             "/usr/bin/google-chrome") if Path(p).exists()), None)
DRIVER = shutil.which("chromedriver")

if CHROMIUM is None or DRIVER is None:
    pytest.skip("needs Chromium and ChromeDriver (Debian: apt-get install chromium "
                "chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {        # no network at all
        "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    driver.get_log("browser")                                   # drop what came before
    driver.get(path.as_uri())
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return window.tfbenchReady"))


def _errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _resources(driver) -> list[str]:
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(function(e){return e.name})")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return reference_page(tmp_path_factory.mktemp("browser"))


def test_report_html_in_chromium(browser, report):
    run, page, summary = report
    _open(browser, page)
    assert _errors(browser) == []
    assert all(not name.startswith("http") for name in _resources(browser))
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#verdicts tbody tr')).map(function(r){"
        "return [r.dataset.claim, r.cells[1].textContent, r.cells[7].textContent]})")
    assert rows == [[c["id"], c["impl"] or "", c["verdict"]] for c in summary["claims"]]
    by_id = {r["case_id"]: r for r in read_records(run)}
    figures = browser.execute_script(
        "return Array.from(document.querySelectorAll('.figure')).filter(function(d){"
        "return d.id !== 'drill'}).map(function(d){return {id: d.id, data: d.data.map("
        "function(t){return {x: t.x, y: t.y, c: t.customdata || null, m: t.meta}})}})")
    assert len(figures) >= 10
    for fig in figures:
        points = [t for t in fig["data"] if t["m"] and t["m"]["role"] == "points"]
        assert points, fig["id"]
        for t in points:
            for x, y, cid in zip(t["x"], t["y"], t["c"]):
                r = by_id[cid]
                assert x == r[t["m"]["variable"]]
                if t["m"]["column"] == "median_s":
                    assert y == r["median_s"]
    first = figures[0]["id"]
    cid = next(t for t in figures[0]["data"] if t["m"]["role"] == "points")["c"][0]
    text = browser.execute_script(
        "var gd = document.getElementById(arguments[0]);"
        "var i = gd.data.findIndex(function(t){return t.meta && t.meta.role === 'points'});"
        "Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: 0}]);"
        "var h = gd.querySelector('.hovertext'); return h ? h.textContent : null", first)
    assert text and cid in text
    shown = browser.execute_script("return document.getElementById('drill-case').value")
    boxes = browser.execute_script("return document.getElementById('drill').data.length")
    assert boxes == (by_id[shown].get("passes") or 1)              # a box per timing pass
    assert _errors(browser) == []


def test_history_page_in_chromium(browser, tmp_path):
    from bench.analysis.history import write_history

    shutil.copytree(REFERENCE, tmp_path / "a")
    shutil.copytree(REFERENCE, tmp_path / "b")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "records.jsonl").write_text("{\n[\n")
    out = write_history([tmp_path], tmp_path / "history.html")["page"]
    _open(browser, out)
    assert _errors(browser) == []
    assert "broken" in browser.find_element("id", "skipped").text
    traces = browser.execute_script(
        "return Array.from(document.querySelectorAll('.figure')).map(function(d){"
        "return d.data.length})")
    assert traces and all(n > 0 for n in traces)
