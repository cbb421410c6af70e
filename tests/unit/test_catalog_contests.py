"""The catalog's contest section: outcome, margin, progress and leading choices of the contests with the most
votes in catalog.json (at most MAX_LISTED_CONTESTS, with the total and where every contest is), drawn on the page
as accessible charts titled from the data; documents linked relatively; nothing loaded from outside."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.release.catalog import build_catalog, render_index
from pipelines.release.catalog.charts import contest_chart_id, turnout_by_municipality
from pipelines.release.catalog.contests import LISTING_ORDER, MAX_LISTED_CONTESTS, contest_sections, listed_ids
from pipelines.release.catalog.page import MAX_CONTEST_CHARTS
from tests.support import contests as fx
from tests.support.catalog import two_releases

BASE = "http://s3.example/bucket"
PARTED = "cdf/parted.json.gz"


def _latest_tables() -> dict[str, pa.Table]:
    """What announce() hands the catalog: contest_results at level contest only."""
    tables = fx.contest_tables()
    results = tables["contest_results"]
    return {**tables, "contest_results": results.filter(pc.equal(results.column("level"), "contest"))}


def _catalog(tables: dict[str, pa.Table] | None = None) -> dict[str, Any]:
    manifests, _, reports = two_releases("us-test", BASE)
    newest = max(manifests, key=lambda m: m["release_id"])
    key = f"cdf/{fx.ELECTION}.json"
    newest["documents"] = {key: {"path": key, "url": f"{BASE}/x/{key}", "format": "NIST", "election_id": fx.ELECTION}}
    # A document published in parts: no file of its own, each part under the dataset's parts/.
    parts = [{"key": f"us-test/parts/{c * 64}.gz", "url": f"{BASE}/parts/{c * 64}.gz", "sha256": c * 64,
              "bytes": n} for c, n in (("a", 3000), ("b", 40))]
    newest["documents"][PARTED] = {"path": PARTED, "format": "NIST", "election_id": fx.ELECTION, "bytes": 3040,
                                   "sha256": "c" * 64, "parts": parts}
    return build_catalog(manifests, reports, _latest_tables() if tables is None else tables)


def _by_id(sections: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["contest_id"]: s for s in sections}


def test_each_contest_has_outcome_margin_progress_and_leading_choices():
    sections = contest_sections(_latest_tables())
    # The most votes first (contest_summary's total_votes: 544, 522, 495, 455, 40).
    assert [s["contest_id"] for s in sections] == [fx.PRESIDENT, fx.QUESTION, fx.LIST, fx.RETENTION, fx.DEFAULT]
    c = _by_id(sections)
    president = c[fx.PRESIDENT]
    assert president["election"] == "2020 General Election (3 November 2020)"
    assert [w["label"] for w in president["winners"]] == ["Donald J. Trump"] and president["margin"] == 160
    assert (president["stations_reporting"], president["stations_expected"], president["total_votes"]) == (3, 3, 544)
    top = president["top_selections"]
    assert [(t["label"], t["votes"]) for t in top] == [("Donald J. Trump", 350), ("Joseph R. Biden", 190),
                                                       ("Write-ins", 4)]
    assert abs(top[0]["share"] - 350 / 544) < 1e-12
    retention = c[fx.RETENTION]
    assert retention["decided_by"] == "option" and [w["label"] for w in retention["winners"]] == ["Yes"]
    assert (retention["margin"], retention["stations_reporting"], retention["stations_expected"]) == (105, 2, 3)
    party_list = c[fx.LIST]
    assert [w["selection_id"] for w in party_list["winners"]] == ["party:rep", "party:dem"]
    assert party_list["margin"] is None  # three seats, two lists: nobody lost
    default = c[fx.DEFAULT]
    assert default["winners"] is None and default["margin"] is None and default["stations_expected"] is None
    # Names of undeclared selections come from the candidates table.
    assert [t["label"] for t in default["top_selections"]] == ["Glenn Thompson", "Robert Williams"]


def test_catalog_carries_contests_of_the_latest_release_and_documents():
    catalog = _catalog()
    newest = catalog["releases"][0]
    section = catalog["contests"]
    assert (section["total"], section["listed"], len(section["items"])) == (5, 5, 5)
    assert section["order"] == LISTING_ORDER
    # Where every contest is: the latest release's contest_summary (this fake release does not list it as a table).
    assert section["all_in"] == {"table": "contest_summary", "release_id": newest["release_id"],
                                 "manifest": newest["manifest"], "path": None, "url": None, "files": []}
    key = f"cdf/{fx.ELECTION}.json"
    assert newest["documents"][key]["path"] == f"releases/{newest['release_id']}/{key}"
    parted = newest["documents"][PARTED]
    assert parted["path"] is None and (parted["bytes"], parted["sha256"]) == (3040, "c" * 64)
    assert [(p["path"], p["bytes"]) for p in parted["parts"]] == [(f"parts/{'a' * 64}.gz", 3000),
                                                                   (f"parts/{'b' * 64}.gz", 40)]
    assert "documents" not in catalog["releases"][1]  # an older release: its manifest lists them
    # A release without contest tables.
    assert _catalog({})["contests"] == {"total": 0, "listed": 0, "order": LISTING_ORDER, "all_in": None, "items": []}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        if tag in ("script", "link", "img", "iframe") or a.get("src"):
            self.external.append(tag)


def test_page_draws_each_contest_accessibly_with_outcome_wording():
    html = render_index(_catalog(), _latest_tables())
    page = _Page()
    page.feed(html)
    for contest_id in (fx.PRESIDENT, fx.LIST, fx.QUESTION, fx.RETENTION, fx.DEFAULT):
        chart = contest_chart_id(contest_id)
        assert chart in page.ids and re.fullmatch(r"[a-z0-9-]+", chart)
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert "Elected: Donald J. Trump, by a margin of 160 votes." in html
    assert "Leading option: Yes, by a margin of 105 votes." in html and "2 of 3 polling stations reporting." in html
    assert "Outcome not determined (the number of seats is unknown)." in html
    assert "how many are expected is unknown" in html
    assert "<caption>Leading choices in President of the United States</caption>" in html
    assert f"releases/{_catalog()['latest']}/cdf/{fx.ELECTION}.json" in page.hrefs
    assert {f"parts/{c * 64}.gz" for c in "ab"} <= set(page.hrefs)  # each part of a parted document, in order
    assert "#contests" in page.hrefs and "contests" in page.ids
    for href in page.hrefs:
        assert not re.match(r"^[a-z]+:|^/", href), f"absolute link {href}"
        if href.startswith("#"):
            assert href[1:] in page.ids, f"dangling anchor {href}"
    assert page.external == []


def test_chart_titles_name_the_election_from_the_data():
    html = render_index(_catalog(), _latest_tables())
    assert "Turnout by municipality: 2020 General Election (3 November 2020)" in html
    assert "Council" not in html
    series = turnout_by_municipality(fx.contest_tables())
    assert series is not None and series.title.endswith("(3 November 2020)")


def test_turnout_counts_each_station_once_and_only_where_both_figures_are_known():
    series = turnout_by_municipality(fx.contest_tables())
    assert series is not None and len(series.values) == 1
    # Precincts 1 and 2 (registered known), each once although they have tallies in four contests.
    assert abs(series.values[0] - (310 + 210) / (1000 + 700)) < 1e-12


def test_many_contests_chart_only_the_first_ones():
    tables = _latest_tables()
    contests = tables["contests"].to_pylist()
    many = [{**contests[0], "contest_id": f"general.us.pa.c{i:02d}.2020-11-03", "name": f"Contest {i}"}
            for i in range(MAX_CONTEST_CHARTS + 3)]
    extra = pa.Table.from_pylist(many, schema=tables["contests"].schema)
    votes = [r for r in tables["contest_results"].to_pylist() if r["contest_id"] == contests[0]["contest_id"]]
    results = pa.Table.from_pylist([{**r, "contest_id": c["contest_id"]} for c in many for r in votes],
                                   schema=tables["contest_results"].schema)
    mine = {**tables, "contests": extra, "contest_results": results}
    html = render_index(_catalog(mine), mine)
    assert f"Charts are drawn for the first {MAX_CONTEST_CHARTS} of {MAX_CONTEST_CHARTS + 3} contests" in html
    assert html.count("<article><h3>Contest ") == MAX_CONTEST_CHARTS + 3
    assert html.count('<figure id="contest-general-us-pa-c') == MAX_CONTEST_CHARTS
    assert html.count("<caption>Leading choices in Contest ") == MAX_CONTEST_CHARTS + 3


def _with_rows(table: pa.Table, change: Any) -> pa.Table:
    return pa.Table.from_pylist(change(table.to_pylist()), schema=table.schema)


def test_labels_fall_back_from_ballot_label_to_name_to_id():
    tables = _latest_tables()

    def relabel(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            if r["selection_id"] == "candidate:joseph-biden":
                r["label"] = ""  # empty: the candidate's name instead
            if r["selection_id"] == "candidate:donald-trump":
                r["label"] = None
        return [r for r in rows if r["selection_id"] != "write-in:write-ins"]  # undeclared, nameless: its id

    def more_winners(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            if r["contest_id"] == fx.PRESIDENT:
                # A running mate is neither declared nor in the results: only its id is known.
                r["winners"] = [*r["winners"], "candidate:kamala-harris"]
        return rows

    mine = {**tables, "contest_selections": _with_rows(tables["contest_selections"], relabel),
            "contest_summary": _with_rows(tables["contest_summary"], more_winners)}
    president = _by_id(contest_sections(mine))[fx.PRESIDENT]
    assert [t["label"] for t in president["top_selections"]] == ["Donald J. Trump", "Joseph R. Biden",
                                                                 "write-in:write-ins"]
    assert [w["label"] for w in president["winners"]] == ["Donald J. Trump", "candidate:kamala-harris"]


def test_dictionary_columns_and_many_chunks_give_the_same_sections():
    tables = _latest_tables()
    results = tables["contest_results"]
    encoded = pa.table({name: (pc.dictionary_encode(col) if pa.types.is_string(col.type) else col)
                        for name, col in zip(results.column_names, results.columns)})
    chunked = {name: pa.concat_tables([t.slice(i, 2) for i in range(0, t.num_rows, 2)]) for name, t in tables.items()}
    want = contest_sections(tables)
    assert contest_sections({**tables, "contest_results": encoded}) == want
    assert contest_sections(chunked) == want
    assert sum(len(c["top_selections"]) for c in want) == results.num_rows  # every selection, top 5 of each


def test_listed_contests_are_the_most_voted_first_ties_by_id_and_those_without_a_total_last():
    tables = _latest_tables()
    base = tables["contests"].to_pylist()[0]
    votes = {"a": 5, "b": None, "c": 9, "d": 5, "e": 1, "f": None}
    mine = {**tables,
            "contests": pa.Table.from_pylist([{**base, "contest_id": c} for c in "fdecba"],
                                             schema=tables["contests"].schema),
            "contest_summary": fx.table("contest_summary", [
                {"election_id": fx.ELECTION, "contest_id": c, "kind": base["kind"], "total_votes": v}
                for c, v in votes.items() if c != "f"])}  # f has no summary row at all
    assert listed_ids(mine, limit=6) == ["c", "a", "d", "e", "b", "f"]
    assert listed_ids(mine, limit=3) == ["c", "a", "d"]
    assert [s["contest_id"] for s in contest_sections(mine, limit=3)] == ["c", "a", "d"]


def _many_contests(n: int) -> dict[str, pa.Table]:
    """The fixture's tables with ``n`` contests like its first one; contest i gets i + 1 times its votes."""
    tables = _latest_tables()
    base = tables["contests"].to_pylist()[0]
    ids = [f"general.us.pa.c{i:03d}.2020-11-03" for i in range(n)]
    votes = [r for r in tables["contest_results"].to_pylist() if r["contest_id"] == base["contest_id"]]
    results = [{**r, "contest_id": cid, "unit_id": cid, "votes": r["votes"] * (i + 1)}
               for i, cid in enumerate(ids) for r in votes]
    total = sum(r["votes"] for r in votes)
    summary = [{"election_id": fx.ELECTION, "contest_id": cid, "kind": base["kind"], "total_votes": total * (i + 1)}
               for i, cid in enumerate(ids)]
    return {**tables,
            "contests": pa.Table.from_pylist([{**base, "contest_id": cid, "name": f"Contest {i}"}
                                              for i, cid in enumerate(ids)], schema=tables["contests"].schema),
            "contest_results": pa.Table.from_pylist(results, schema=tables["contest_results"].schema),
            "contest_summary": fx.table("contest_summary", summary)}


def test_two_hundred_contests_list_the_hundred_with_the_most_votes_and_say_where_the_rest_are():
    n = 200
    mine = _many_contests(n)
    catalog = _catalog(mine)
    section = catalog["contests"]
    assert MAX_LISTED_CONTESTS == 100
    assert (section["total"], section["listed"], len(section["items"])) == (n, MAX_LISTED_CONTESTS,
                                                                            MAX_LISTED_CONTESTS)
    assert [c["name"] for c in section["items"]] == [f"Contest {i}" for i in range(n - 1, n - 1 - 100, -1)]
    # Its size does not follow the number of contests (only the figures' digits may differ).
    twice = len(json.dumps(_catalog(_many_contests(2 * n))["contests"]))
    assert abs(twice - len(json.dumps(section))) < len(json.dumps(section)) / 100
    latest = catalog["releases"][0]
    some = next(iter(latest["tables"].values()))
    latest["tables"]["contest_summary"] = {**some,
                                           "path": f"releases/{latest['release_id']}/tables/contest_summary.parquet"}
    html = render_index(catalog, mine)
    shown = re.findall(r"<article><h3>Contest (\d+)</h3>", html)
    assert shown == [str(i) for i in range(n - 1, n - 1 - MAX_LISTED_CONTESTS, -1)]
    charted = re.findall(r'<figure id="contest-general-us-pa-c(\d+)-', html)
    assert charted == [f"{i:03d}" for i in range(n - 1, n - 1 - MAX_CONTEST_CHARTS, -1)]
    link = f'<a href="{latest["tables"]["contest_summary"]["path"]}">contest_summary</a>'
    assert f"{MAX_LISTED_CONTESTS} of {n} contests; all in {link}." in html
    page = _Page()
    page.feed(html)
    assert "catalog.json" in page.hrefs and latest["tables"]["contest_summary"]["path"] in page.hrefs
    assert "<code>contest_results</code>" in html  # not in this release's tables: named, not linked
    # A table in several files: the link goes to the table list, which links each file.
    latest["tables"]["contest_results"] = {**some, "path": None, "files": [
        {"path": "tables/contest_results/0.parquet", "url": None, "rows": 1, "bytes": 1, "sha256": "0" * 64}]}
    assert '<a href="#tables">contest_results</a>' in render_index(catalog, mine)


def test_the_latest_columns_are_all_the_catalog_reads():
    from pipelines.release.catalog import LATEST_COLUMNS
    from pipelines.release.pipeline import CHART_TABLES
    from tests.support.catalog import fake_tables

    tables = {**fake_tables(), **_latest_tables()}
    narrow = {n: t.select(LATEST_COLUMNS[n]) for n, t in tables.items()}
    assert set(tables) == set(LATEST_COLUMNS) == set(CHART_TABLES)
    catalog = _catalog(narrow)
    assert catalog == _catalog(tables)
    assert render_index(catalog, narrow) == render_index(_catalog(tables), tables)
