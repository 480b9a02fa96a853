"""bench.analysis.report.html: report.html holds the summary's verdicts, the records' points
and samples, needs no network, and escapes what it embeds."""

import json
import re

import pytest

from bench.analysis import page as page_mod
from bench.reader import read_records
from support import reference_page


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run, path, summary = reference_page(tmp_path_factory.mktemp("html"))
    text = path.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="tfbench-data">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))
    return {"run": run, "text": text, "data": data, "summary": summary}


def test_the_page_opens_with_the_summarys_verdicts(page):
    text, claims = page["text"], page["summary"]["claims"]
    assert text.index('id="verdicts"') < text.index('class="figure"')
    rows = re.findall(r'<tr class="([a-z-]+)" data-claim="([^"]+)">', text)
    assert [cid for _, cid in rows] == [c["id"] for c in claims]
    assert [cls for cls, _ in rows] == [page_mod.verdict_class(c["verdict"]) for c in claims]


def test_every_points_trace_is_the_records_data(page):
    by_id = {r["case_id"]: r for r in read_records(page["run"])}
    n = 0
    for fig in page["data"]["figures"]:
        for trace in fig["data"]:
            if trace["meta"]["role"] != "points":
                continue
            column, variable = trace["meta"]["column"], trace["meta"]["variable"]
            for x, y, cid in zip(trace["x"], trace["y"], trace["customdata"]):
                r = by_id[cid]
                assert x == r[variable] and r["status"] == "ok"
                if column == "median_s":
                    assert y == r["median_s"]
                n += 1
    assert n > 100


def test_fit_lines_follow_their_exponent_over_their_range(page):
    fits = [t for f in page["data"]["figures"] for t in f["data"] if t["meta"]["role"] == "fit"]
    assert fits
    for t in fits:
        slope = (__import__("math").log(t["y"][-1] / t["y"][0])
                 / __import__("math").log(t["x"][-1] / t["x"][0]))
        assert f"^{slope:.2f}" in t["name"]


def test_the_drill_down_has_every_ok_case_with_its_passes(page):
    records = [r for r in read_records(page["run"]) if r["status"] == "ok"]
    cases = page["data"]["cases"]
    assert set(cases) == {r["case_id"] for r in records}
    r = records[0]
    assert sum(len(p) for p in cases[r["case_id"]]["passes"]) == len(r["samples_s"])


def test_the_page_fetches_nothing_and_embeds_plotly_once(page):
    text = page["text"]
    ours = text.replace(page_mod.PLOTLY_JS.read_text(), "")     # the library's own strings aside
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=|https?://', ours)
    assert text.count("plotly.js (cartesian - minified) v4.1.1") == 1
    assert page_mod.PLOTLY_JS.stat().st_size < len(text) < 2 * page_mod.PLOTLY_JS.stat().st_size   # data < library


def test_embedded_json_cannot_close_its_script_tag():
    text = page_mod._json_script({"label": "</script><script>alert(1)</script>"})
    assert "</script>" not in text and json.loads(text.replace("<\\/", "</"))["label"].startswith("</")
    assert "&lt;b&gt;" in page_mod.table(["a"], [["<b>"]])
