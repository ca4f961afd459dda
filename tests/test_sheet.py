"""The buyer's sheet: partition summaries that merge exactly, and the page predict writes."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_browser import browser_check, find_browser

from conftest import run_cli
from pipeline.atomic import NotOurs, marker_path
from pipeline.report.drawing import figure_png
from pipeline.report.sheet import markup_references, ranges_chart, render_sheet, sheet_html
from pipeline.sheet_summary import (
    POINTS_EDGES,
    RANKINGS,
    TOP_K,
    VALUE_BASE,
    SheetSummary,
    merge_summaries,
    rank,
    reason_kind,
    summarize,
)
from pipeline.steps.predict import predict, sheet_path

ABOUT = {"inventory": "cellar.csv", "model": "model.joblib", "version": "test", "kind": "sgd",
         "coverage": 0.8}
TABLE_IDS = ["likely-90", "best-value", "widest-range"]


# ---------------------------------------------------------------- what the workers return
@pytest.fixture(scope="module")
def scored(sample_csv) -> pd.DataFrame:
    """The sample's wines as predict's workers see them, with made-up predictions.

    Predictions on a half-point grid and widths on a tenth, so that rankings tie
    often; some prices missing or zero; some rows set aside, a few with details in
    their reason.
    """
    raw = pd.read_csv(sample_csv, index_col=0)
    rng = np.random.default_rng(7)
    n = len(raw)
    predicted = np.clip(np.round(rng.normal(88, 3, n) * 2) / 2, 80, 100)
    lower = np.clip(predicted - np.round(rng.uniform(1, 3, n), 1), 80, 100)
    upper = np.clip(predicted + np.round(rng.uniform(1, 3, n), 1), 80, 100)
    frame = pd.DataFrame({"id": raw.index.astype(str).to_numpy(), "predicted_points": predicted,
                          "lower": lower, "upper": upper, "reject_reason": ""},
                         index=pd.RangeIndex(n) + 1)
    for col in ("title", "winery", "variety", "country", "province", "price"):
        frame[col] = raw[col].to_numpy()
    aside = rng.choice(n, 60, replace=False)
    frame.iloc[aside, [1, 2, 3]] = np.nan
    frame.iloc[aside[:30], 4] = "description missing"
    frame.iloc[aside[30:50], 4] = [f"wrong number of fields ({i}, expected 14): x,y"
                                   for i in range(20)]
    frame.iloc[aside[50:], 4] = "price outside 0-100000"
    frame.iloc[:5, frame.columns.get_loc("price")] = 0.0
    return frame


def brute_force(frame: pd.DataFrame, ranking: str, k: int = TOP_K) -> list[str]:
    """The ids of a ranking's top k, computed row by row without pandas' sorting."""
    wines = []
    for record, row in frame.iterrows():
        if np.isnan(row["predicted_points"]):
            continue
        if ranking == "likely_90":
            key = row["lower"]
        elif ranking == "value":
            if not (row["price"] > 0):
                continue
            key = (row["predicted_points"] - VALUE_BASE) / row["price"]
        else:
            key = np.round(row["upper"] - row["lower"], 3)
        wines.append((-key, -row["predicted_points"], record, row["id"]))
    return [w[3] for w in sorted(wines)[:k]]


def assert_same(a: SheetSummary, b: SheetSummary) -> None:
    assert (a.rows, a.scored, a.good, a.sure_good, a.priced, a.k) == (
        b.rows, b.scored, b.good, b.sure_good, b.priced, b.k)
    assert a.reasons == b.reasons
    np.testing.assert_array_equal(a.histogram, b.histogram)
    assert a.predicted_sum == pytest.approx(b.predicted_sum)
    assert a.width_sum == pytest.approx(b.width_sum)
    assert (a.width_min, a.width_max) == (b.width_min, b.width_max)
    for name in RANKINGS:
        pd.testing.assert_frame_equal(a.top[name], b.top[name])


@pytest.mark.parametrize(("rows", "size"), [(120, 1), (None, 101), (None, 500), (None, 10_000)])
def test_merged_partition_summaries_equal_the_summary_of_the_whole(scored, rows, size):
    scored = scored.iloc[:rows]
    whole = summarize(scored)
    parts = [summarize(scored.iloc[i:i + size]) for i in range(0, len(scored), size)]
    assert_same(merge_summaries(parts), whole)
    # In any order, and merged in stages (as summaries of summaries).
    rng = np.random.default_rng(size)
    shuffled = [parts[i] for i in rng.permutation(len(parts))]
    half = len(shuffled) // 2
    assert_same(merge_summaries([merge_summaries(shuffled[:half]),
                                 merge_summaries(shuffled[half:])]), whole)


@pytest.mark.parametrize("ranking", list(RANKINGS))
def test_each_ranking_is_its_top_k(scored, ranking):
    summary = merge_summaries(summarize(scored.iloc[i:i + 250])
                              for i in range(0, len(scored), 250))
    top = summary.top[ranking]
    assert len(top) == TOP_K
    assert top["id"].tolist() == brute_force(scored, ranking)
    if ranking == "value":
        assert (top["price"] > 0).all()
    # What the sheet shows of a wine comes with it, from its own row.
    first = scored[scored["id"] == top["id"].iloc[0]].iloc[0]
    assert top[["title", "winery", "variety", "country"]].iloc[0].tolist() == \
        first[["title", "winery", "variety", "country"]].tolist()


def test_counts_add_up_to_the_rows(scored):
    summary = merge_summaries(summarize(scored.iloc[i:i + 999])
                              for i in range(0, len(scored), 999))
    assert summary.rows == len(scored)
    assert summary.scored + sum(summary.reasons.values()) == summary.rows
    assert summary.set_aside == 60
    assert summary.reasons == {"description missing": 30, "wrong number of fields": 20,
                               "price outside 0-100000": 10}
    assert summary.histogram.sum() == summary.scored
    assert len(summary.histogram) == len(POINTS_EDGES) - 1 == 40
    good = scored["predicted_points"] >= 90
    assert summary.good == good.sum()
    assert summary.sure_good == (scored["lower"] >= 90).sum()
    assert summary.priced == ((scored["price"] > 0) & scored["predicted_points"].notna()).sum()
    assert summary.mean_predicted == pytest.approx(scored["predicted_points"].mean())


def test_fewer_wines_than_k(scored):
    few = summarize(scored.iloc[:4])
    merged = merge_summaries([summarize(scored.iloc[:2]), summarize(scored.iloc[2:4])])
    assert_same(merged, few)
    assert all(len(few.top[name]) <= 4 for name in RANKINGS)
    document = sheet_html(few, ABOUT, {})
    assert "that can be ranked here are shown" in document


def test_no_partitions_and_empty_partitions(scored):
    empty = merge_summaries([])
    assert (empty.rows, empty.scored, empty.histogram.sum()) == (0, 0, 0)
    assert_same(merge_summaries([summarize(scored.iloc[:0]), summarize(scored.iloc[:3])]),
                summarize(scored.iloc[:3]))


def test_reason_kinds_do_not_grow_with_the_rows():
    assert reason_kind("wrong number of fields (3, expected 14): a,b,c") == \
        "wrong number of fields"
    assert reason_kind("description missing") == "description missing"
    assert reason_kind("price outside 0-100000") == "price outside 0-100000"
    assert reason_kind("") == "unknown reason"


def test_rank_ties_are_broken_by_prediction_then_file_order():
    wines = pd.DataFrame({"record": [5, 3, 9, 1], "id": list("abcd"), "title": None,
                          "winery": None, "variety": None, "country": None, "province": None,
                          "price": 10.0, "predicted_points": [90, 91, 91, 90],
                          "lower": 88.0, "upper": 92.0, "points_per_dollar": 1.0,
                          "width": 4.0})
    assert rank(wines, "likely_90")["id"].tolist() == ["b", "c", "d", "a"]


# ------------------------------------------------------------------ the page, edge cases
def _parse(document: str) -> list[tuple[str, dict]]:
    tags: list[tuple[str, dict]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, dict(attrs)))

    Tags().feed(document)
    return tags


def test_an_inventory_where_every_wine_was_set_aside(tmp_path, scored):
    none = scored.iloc[:30].copy()
    none[["predicted_points", "lower", "upper"]] = np.nan
    none["reject_reason"] = "description missing"
    summary = merge_summaries([summarize(none.iloc[:10]), summarize(none.iloc[10:])])
    assert (summary.rows, summary.scored, summary.reasons) == (30, 0, {"description missing": 30})
    out = render_sheet(summary, tmp_path / "sheet.html", ABOUT)
    document = out.read_text(encoding="utf-8")
    assert "<img" not in document
    assert document.count("No wine could be scored") == 3
    assert 'data-count="30"' in document
    assert markup_references(document) == []
    assert marker_path(out).is_file()


def test_an_inventory_without_prices(tmp_path, scored):
    free = scored.iloc[:200].assign(price=np.nan)
    summary = summarize(free)
    assert summary.priced == 0 and summary.top["value"].empty
    document = render_sheet(summary, tmp_path / "sheet.html", ABOUT).read_text("utf-8")
    assert "None of the scored wines has a price" in document
    assert 'id="best-value"' not in document
    assert 'id="likely-90"' in document and 'id="widest-range"' in document
    assert document.count("<img ") == 2


def test_text_from_the_inventory_is_escaped(tmp_path, scored):
    hostile = scored.iloc[:20].copy()
    best = hostile["lower"].idxmax()
    hostile.loc[best, "title"] = "<script>alert('title')</script> Smith & Sons $5 src=//x"
    hostile.loc[best, "winery"] = "<img src=x onerror=alert(1)>"
    hostile.loc[best, "variety"] = "Pinot </td></tr></table> Noir"
    hostile.loc[best, "id"] = '"><b>42</b>'
    hostile.iloc[-1, hostile.columns.get_loc("reject_reason")] = "<i>odd</i> reason"
    hostile.iloc[-1, [1, 2, 3]] = np.nan
    about = {**ABOUT, "inventory": "<cellar> & co.csv"}
    document = render_sheet(summarize(hostile), tmp_path / "sheet.html", about).read_text("utf-8")
    tags = [tag for tag, _ in _parse(document)]
    assert "script" not in tags and "b" not in tags and "i" not in tags
    assert tags.count("img") == 2  # the two figures, not the winery
    assert tags.count("table") == 5  # counts, reasons and the three rankings, none cut short
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; Smith &amp; Sons" in document
    assert "&lt;img src=x onerror=alert(1)&gt;" in document
    assert "&#34;&gt;&lt;b&gt;42&lt;/b&gt;" in document
    assert "&lt;i&gt;odd&lt;/i&gt; reason" in document
    assert "<title>Buyer's sheet: &lt;cellar&gt; &amp; co.csv</title>" in document
    assert markup_references(document) == []


def test_markup_references_reads_tags_not_text():
    assert markup_references("<p>src=//example.com url(//x)</p>") == []
    assert markup_references('<img src="http://example.com/a.png">')
    assert markup_references('<img src="data:image/png;base64,AAAA">') == []
    assert markup_references("<script>1</script>") == ["<script>"]
    assert markup_references("<style>@import 'x.css';</style>")


def test_a_dollar_in_a_wine_name_is_drawn_as_a_dollar(scored):
    top = summarize(scored.iloc[:3]).top["likely_90"].assign(title="$5 and $10 $\\frac{")
    assert figure_png(ranges_chart, top, "Ranges").startswith(b"\x89PNG")  # no mathtext error
    label = ranges_chart(top, "Ranges").axes[0].get_yticklabels()[0].get_text()
    assert label.startswith("1. \\$5 and \\$10")


# ------------------------------------------------------------------- written by predict
@pytest.fixture(scope="module")
def inventory(tmp_path_factory, sample_csv) -> Path:
    """The real sample without its points, a few rows spoilt so that reasons show."""
    df = pd.read_csv(sample_csv, index_col=0).drop(columns="points").astype({"price": "object"})
    df.iloc[[3, 500, 4000], df.columns.get_loc("description")] = None
    df.iloc[[10, 11], df.columns.get_loc("price")] = "-3"
    df.iloc[12, df.columns.get_loc("price")] = "cheap"
    path = tmp_path_factory.mktemp("inventory") / "cellar.csv"
    df.to_csv(path)
    return path


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, client, model_path, inventory) -> Path:
    out = tmp_path_factory.mktemp("predicted") / "cellar-1a2b3c4d.csv"
    predict(model_path, inventory, out, blocksize="300KB")
    return out


def _table_ids(document: str, table: str) -> list[str]:
    found = re.search(rf'<table class="wines" id="{table}">(.*?)</table>', document, re.DOTALL)
    assert found, f"no table {table}"
    return [html.unescape(v) for v in re.findall(r'<td class="id">(.*?)</td>', found.group(1))]


def test_predict_writes_the_sheet_beside_the_csv(predicted, inventory):
    sheet = predicted.with_name("cellar-1a2b3c4d.html")
    assert sheet_path(predicted) == sheet and sheet.is_file() and marker_path(sheet).is_file()
    document = sheet.read_text(encoding="utf-8")
    rows = pd.read_csv(predicted, dtype={"id": str}, keep_default_na=False, na_values=[""])
    wines = pd.read_csv(inventory, index_col=0)
    counts = dict(re.findall(r'<tr data-key="(\w+)"><td>[^<]*</td><td data-count="(\d+)"',
                             document))
    scored = rows["predicted_points"].notna()
    assert int(counts["rows"]) == len(rows) == len(wines) == 6042
    assert int(counts["scored"]) == scored.sum()
    assert int(counts["set_aside"]) == (~scored).sum() == 6
    assert int(counts["scored"]) + int(counts["set_aside"]) == len(rows)
    assert int(counts["good"]) == (rows["predicted_points"] >= 90).sum()
    reasons = re.search(r'<table class="compact" id="reasons">(.*?)</table>', document,
                        re.DOTALL).group(1)
    shown = {html.unescape(r): int(n) for r, n in
             re.findall(r'<tr><td>([^<]*)</td><td data-count="(\d+)"', reasons)}
    assert shown == {"description missing": 3, "price outside 0-100000": 2,
                     "price not a number": 1}
    # The rankings are the CSV's own, read back with the inventory's prices.
    frame = rows.assign(price=pd.to_numeric(wines["price"], errors="coerce").to_numpy())
    frame.index = pd.RangeIndex(len(frame))
    for ranking, table in zip(RANKINGS, TABLE_IDS, strict=True):
        assert _table_ids(document, table) == brute_force(frame, ranking), ranking
    assert document.count("<img ") == 2
    assert markup_references(document) == []


def test_the_sheet_does_not_depend_on_the_partitions(tmp_path, client, model_path, inventory,
                                                     predicted):
    out = tmp_path / "whole.csv"
    predict(model_path, inventory, out)  # one partition
    assert out.read_bytes() == predicted.read_bytes()
    assert sheet_path(out).read_bytes() == sheet_path(predicted).read_bytes()


def test_the_sheet_loads_offline_in_headless_chromium(predicted, tmp_path):
    browser = find_browser()
    sheet = sheet_path(predicted)
    expected = sheet.read_text(encoding="utf-8").count("<img ")
    result = browser_check(browser, sheet, tmp_path)
    assert result["total"] == expected == 2
    assert result["loaded"] == expected, f"figures that did not load: {result['broken']}"
    assert min(result["widths"]) >= 300, result["widths"]
    assert result["fetched"] == [], "the sheet fetched something from outside itself"
    assert result["scripts"] == 1  # the probe's own: the sheet has none
    tables = {t["id"]: t["rows"] for t in result["tables"]}
    assert {name: tables.get(name) for name in TABLE_IDS} == dict.fromkeys(TABLE_IDS, TOP_K)
    assert tables["counts"] >= 3 and tables["reasons"] == 3


# ------------------------------------------------------------- refused like the CSV itself
def test_a_sheet_path_holding_the_users_file_is_refused(tmp_path, client, model_path,
                                                        inventory):
    theirs = tmp_path / "pred.html"
    theirs.write_text("my notes")
    with pytest.raises(NotOurs, match="refusing to replace .*pred.html"):
        predict(model_path, inventory, tmp_path / "pred.csv")
    assert theirs.read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.html"]


def test_a_sheet_that_would_be_the_input_or_the_output_is_refused(tmp_path, client, model_path,
                                                                  inventory):
    src = tmp_path / "wines.html"  # a CSV, oddly named
    src.write_bytes(inventory.read_bytes())
    with pytest.raises(NotOurs, match="it is the input"):
        predict(model_path, src, tmp_path / "wines.csv")
    with pytest.raises(NotOurs, match="same name"):
        predict(model_path, inventory, tmp_path / "pred.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wines.html"]


def test_cli_no_sheet_writes_none_and_removes_an_earlier_one(tmp_path, client, model_path,
                                                             inventory):
    src = tmp_path / "few.csv"
    pd.read_csv(inventory, index_col=0).head(40).to_csv(src)
    out = tmp_path / "pred.csv"
    predict(model_path, src, out)
    assert sheet_path(out).is_file()
    result = run_cli("predict", "--model", str(model_path), "--input", str(src),
                     "--output", str(out), "--no-sheet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.is_file() and not sheet_path(out).exists()
    assert not marker_path(sheet_path(out)).exists()
