"""The catalog: catalog.json lists every release newest first with gate and changes, the latest with its tables,
the older ones as summaries of a bounded size; index.html draws the charts as accessible inline SVG, lists every
release, links only relatively and loads nothing external."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
from html.parser import HTMLParser
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from pipelines.fold.tables import SEATS, STATION_TURNOUT
from pipelines.release.catalog import build_catalog, catalog_keys, publish_catalog, render_index
from pipelines.release.catalog.build import CATALOG_FORMAT, FULL_ENTRIES, reusable_entries, summary
from pipelines.release.catalog.upload import ENTRIES_METADATA, manifests_since, read_catalog
from pipelines.release.s3 import JSON_TYPE, json_document
from pipelines.release.store import ReleaseStore
from pipelines.settings import Settings
from tests.support.catalog import fake_release, fake_tables, two_releases

BASE = "http://s3.example/bucket"


class _Page(HTMLParser):
    """Collects what the tests look at: links, external resources, svgs with their titles, ids, the text."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.external: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.text = ""

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        if tag in ("script", "link", "img", "iframe") or (tag != "svg" and a.get("src")):
            self.external.append(tag)


def _catalog() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifests, _, reports = two_releases("az-test", BASE)
    # Given oldest first on purpose: the catalog must order them itself.
    return build_catalog(manifests, reports), manifests


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_catalog_lists_releases_newest_first_with_tables_gate_and_changes():
    catalog, manifests = _catalog()
    assert catalog["format"] == CATALOG_FORMAT and catalog["dataset"] == "az-test"
    ids = [r["release_id"] for r in catalog["releases"]]
    assert ids == sorted((m["release_id"] for m in manifests), reverse=True) and catalog["latest"] == ids[0]
    newest = catalog["releases"][0]
    turnout = newest["tables"][STATION_TURNOUT]
    assert turnout["rows"] == 7 and turnout["bytes"] > 0 and len(turnout["sha256"]) == 64
    assert turnout["path"] == f"releases/{ids[0]}/tables/station_turnout.parquet"
    assert turnout["url"] == f"{BASE}/az-test/releases/{ids[0]}/tables/station_turnout.parquet"
    assert {c["name"] for c in turnout["columns"]} >= {"station_id", "turnout"}
    assert all(c["description"] for c in turnout["columns"])
    assert newest["gate"]["passed"] and newest["gate"]["report"] == f"releases/{ids[0]}/validation.json"
    assert newest["gate"]["warnings"] == ["observations.evidence_present"]
    assert newest["changes"]["previous_release"] == ids[1]
    assert newest["changes"]["tables"][STATION_TURNOUT] == {"added": 1, "changed": 1, "removed": 0}
    (correction,) = newest["changes"]["corrections"]
    assert correction["reason"].startswith("Protocol re-counted") and correction["kind"] == "supersede"
    assert newest["changes"]["correction_count"] == 1
    older = catalog["releases"][1]
    assert older["previous_release"] is None
    # The older release is a summary: its manifest lists the tables, files, documents and snapshot.
    assert "tables" not in older and "documents" not in older and "snapshot" not in older
    assert older["manifest"] == f"releases/{ids[1]}/manifest.json" and older["rows"] == sum(
        t["rows"] for t in manifests[0]["tables"].values())
    assert older["gate"]["warnings"] == ["observations.evidence_present"]
    assert older["changes"] == {"previous_release": None, "tables": {}, "correction_count": 0}
    json.dumps(catalog)  # JSON-ready


def test_catalog_is_deterministic_and_handles_no_release():
    manifests, _, reports = two_releases("az-test", BASE)
    assert build_catalog(manifests, reports) == build_catalog(list(reversed(manifests)), reports)
    empty = build_catalog([], {})
    assert empty["releases"] == [] and empty["latest"] is None
    assert "No release has been published yet" in render_index(empty, {})


def test_gate_falls_back_to_manifest_checks_without_report():
    manifests, _, _ = two_releases("az-test", BASE)
    gate = build_catalog(manifests, {})["releases"][0]["gate"]
    assert gate["checks_run"] == 2 and gate["checks_failed"] == 1 and gate["passed"]


def test_index_has_the_four_charts_as_accessible_svg():
    catalog, _ = _catalog()
    html = render_index(catalog, fake_tables())
    page = _parse(html)
    assert page.tags.count("svg") == 4
    assert {"turnout", "seats", "incidents", "incidents-over-time"} <= page.ids
    for chart in ("turnout", "seats", "incidents", "incidents-over-time"):
        assert f'id="{chart}-title"' in html and f'id="{chart}-desc"' in html
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert html.count('class="axis-label"') == 8  # two axis labels per chart
    assert page.tags.count("table") >= 4 and page.tags.count("caption") >= 4  # table fallbacks
    # Names come from the reference tables; independents are labelled; turnout aggregated per municipality.
    assert "REAL Party" in html and "Independent" in html and "Ganja" in html
    assert "carousel voting" in html


def test_turnout_is_aggregated_from_stations():
    from pipelines.release.catalog.charts import turnout_by_municipality

    series = turnout_by_municipality(fake_tables())
    assert series is not None and len(series.labels) == 3
    # Baku: stations 0 and 3 -> (300 + 450) / (1000 + 1300)
    assert abs(dict(zip(series.labels, series.values))["Baku"] - 750 / 2300) < 1e-9
    assert list(series.values) == sorted(series.values, reverse=True)


def test_the_turnout_table_lists_the_municipalities_drawn_and_says_where_the_others_are(monkeypatch):
    from pipelines.release.catalog import charts

    monkeypatch.setattr(charts, "MAX_MUNICIPALITY_BARS", 2)
    series = charts.turnout_by_municipality(fake_tables())
    assert series is not None and len(series.labels) == 3 and series.listed == 2
    assert "2 municipalities with the highest turnout of 3" in series.note and STATION_TURNOUT in series.note
    html = render_index(_catalog()[0], fake_tables())
    figure = html[html.index('<figure id="turnout"'):]
    figure = figure[:figure.index("</figure>")]
    table = figure[figure.index("<tbody>"):]
    assert table.count("<tr>") == 2 and series.labels[0] in table and series.labels[2] not in table


def test_index_lists_every_release_with_relative_links_only():
    catalog, manifests = _catalog()
    html = render_index(catalog, fake_tables())
    page = _parse(html)
    for m in manifests:
        rid = m["release_id"]
        assert f"release-{rid}" in page.ids
        assert f"releases/{rid}/manifest.json" in page.hrefs
        assert f"releases/{rid}/validation.json" in page.hrefs
        # The latest release's tables are linked; an older release's are in its manifest.
        latest = rid == catalog["latest"]
        for entry in m["tables"].values():
            assert (f"releases/{rid}/{entry['path']}" in page.hrefs) == latest
    assert "catalog.json" in page.hrefs
    for href in page.hrefs:
        assert not re.match(r"^[a-z]+:|^/", href), f"absolute link {href}"
        if href.startswith("#"):
            assert href[1:] in page.ids, f"dangling anchor {href}"
    assert page.external == []  # no script, stylesheet, font or image is loaded
    assert "Protocol re-counted" in html and "(latest)" in html


def test_a_release_listed_as_a_summary_links_its_manifest_for_the_tables():
    catalog, _ = _catalog()
    # Only a catalog kept from a racing publisher's could start with one; the page must still stand.
    catalog["releases"] = [summary(r) for r in catalog["releases"]]
    html = render_index(catalog, fake_tables())
    page = _parse(html)
    for r in catalog["releases"]:
        assert r["manifest"] in page.hrefs and r["gate"]["report"] in page.hrefs
    assert not any(h.endswith(".parquet") for h in page.hrefs)
    assert "1 correction (listed in the manifest)." in html and "Its tables, with a link to each file" in html


def test_index_without_chart_tables_says_so():
    catalog, _ = _catalog()
    html = render_index(catalog, {SEATS: fake_tables()[SEATS]})
    assert html.count("<svg") == 1 and "no <code>station_turnout</code> table" in html


def test_text_is_escaped():
    catalog, _ = _catalog()
    catalog["releases"][0]["changes"]["corrections"][0]["reason"] = "<script>alert(1)</script>"
    assert "<script>" not in render_index(catalog, {})


class _FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.gets: list[str] = []

    def put_object(self, **kw: Any) -> dict[str, str]:
        self.objects[kw["Key"]] = kw
        return {"ETag": '"e"'}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        self.gets.append(Key)
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        obj = self.objects[Key]
        body = obj["Body"] if isinstance(obj["Body"], bytes) else obj["Body"].encode()
        return {"Body": io.BytesIO(body), "ETag": '"e"', "Metadata": obj.get("Metadata", {})}


def test_publish_catalog_writes_both_documents_with_content_types():
    manifests, _, reports = two_releases("az-test", BASE)
    s3 = _FakeS3()
    keys = publish_catalog(Settings(), s3, "az-test", manifests, fake_tables(), reports=reports)
    assert keys == list(catalog_keys("az-test")) == ["az-test/catalog.json", "az-test/index.html"]
    assert s3.objects["az-test/catalog.json"]["ContentType"].startswith("application/json")
    assert s3.objects["az-test/index.html"]["ContentType"].startswith("text/html")
    assert json.loads(s3.objects["az-test/catalog.json"]["Body"])["latest"] == manifests[1]["release_id"]


def test_fake_release_matches_its_manifest():
    manifest, files, _ = fake_release("d", "20250131T120000Z-x", base_url="http://h/b")
    for name, entry in manifest["tables"].items():
        body = files[f"d/releases/20250131T120000Z-x/{entry['path']}"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["bytes"]
        assert pq.read_table(pa.py_buffer(body)).num_rows == entry["rows"]


def test_every_json_document_is_written_with_the_one_json_content_type():
    manifests, _, reports = two_releases("az-test", BASE)
    s3 = _FakeS3()
    publish_catalog(Settings(), s3, "az-test", manifests, fake_tables(), reports=reports)
    ReleaseStore(Settings(), s3, "az-test").put_json("az-test/latest.json", {"release_id": "r1"})
    for key in ("az-test/catalog.json", "az-test/latest.json"):
        assert s3.objects[key]["ContentType"] == JSON_TYPE == "application/json; charset=utf-8"
        # Compact: every publish uploads them again, and indentation was a quarter of their bytes.
        body = s3.objects[key]["Body"]
        assert body == json_document(json.loads(body), sort_keys=key.endswith("latest.json")) and b"\n" not in body


def test_a_table_in_several_files_is_listed_file_by_file_in_the_catalog_and_counted_on_the_page():
    manifests, _, reports = two_releases("az-test", BASE)
    entry = manifests[-1]["tables"][STATION_TURNOUT]
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    entry.update(path=None, url=None, files=[
        {"key": f"az-test/tables/{STATION_TURNOUT}/{sha}.parquet", "rows": 2, "bytes": 10, "sha256": sha}
        for sha in shas])
    catalog = build_catalog(manifests, reports)
    listed = catalog["releases"][0]["tables"][STATION_TURNOUT]
    assert listed["path"] is None
    assert [f["path"] for f in listed["files"]] == [f"tables/{STATION_TURNOUT}/{sha}.parquet" for sha in shas]
    page = _parse(render_index(catalog, fake_tables()))
    # The page counts the files and points at the two documents that list them; it links none of them.
    assert not any(sha in href for sha in shas for href in page.hrefs)
    assert "3 files, listed with their rows, bytes and SHA-256 in catalog.json and in manifest.json" in page.text
    assert "catalog.json" in page.hrefs and f"releases/{manifests[-1]['release_id']}/manifest.json" in page.hrefs
    assert "#tables" in page.hrefs
    assert f"releases/{manifests[-1]['release_id']}/tables/{STATION_TURNOUT}.parquet" not in page.hrefs


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))  # what a catalog read back from the bucket is


def test_an_earlier_catalog_spares_the_manifests_and_reports_of_the_releases_it_lists():
    manifests, _, reports = two_releases("az-test", BASE)
    first, second = sorted(manifests, key=lambda m: m["release_id"])
    full = build_catalog(manifests, reports, fake_tables())
    previous = _json(build_catalog([first], reports))
    assert build_catalog([second], {second["release_id"]: reports[second["release_id"]]}, fake_tables(),
                         previous) == full
    assert build_catalog(manifests, {}, fake_tables(), previous)["releases"][1] == full["releases"][1]
    # An earlier catalog's release newer than every manifest given is left out (a racing publisher's); the release
    # that then heads the catalog is listed in full again from its manifest, not kept as the summary it was.
    assert build_catalog([first], reports, None, _json(full)) == build_catalog([first], reports)
    # Of another format, or with entries of another shape, it is not used.
    for other in ({**previous, "format": "ballotstream.catalog/0"},
                  {**previous, "releases": [{**previous["releases"][0], "extra": 1}]}):
        assert [r["release_id"] for r in build_catalog([second], reports, None, other)["releases"]] == [
            second["release_id"]]
    with pytest.raises(ValueError, match="several datasets"):
        build_catalog([{**second, "dataset": "other"}], reports, None, previous)


def _fake_s3_holding(files: dict[str, bytes]) -> _FakeS3:
    s3 = _FakeS3()
    for key, body in files.items():
        s3.put_object(Key=key, Body=body)
    return s3


def test_publish_catalog_reuses_the_catalog_it_wrote_and_reads_only_new_reports():
    manifests, files, reports = two_releases("az-test", BASE)
    first, second = sorted(manifests, key=lambda m: m["release_id"])
    s3 = _fake_s3_holding(files)
    publish_catalog(Settings(), s3, "az-test", [first], fake_tables())
    s3.gets.clear()
    publish_catalog(Settings(), s3, "az-test", manifests, fake_tables())
    assert s3.gets == ["az-test/catalog.json", f"az-test/releases/{second['release_id']}/validation.json"]
    again = _FakeS3()
    publish_catalog(Settings(), again, "az-test", manifests, fake_tables(), reports=reports)
    for key in catalog_keys("az-test"):
        assert s3.objects[key]["Body"] == again.objects[key]["Body"]
    assert read_catalog(Settings(), s3, "az-test") is not None
    # A catalog another version of the entries' code wrote, or one without a version (older code), is not reused.
    s3.objects["az-test/catalog.json"]["Metadata"] = {ENTRIES_METADATA: "0123456789abcdef"}
    assert read_catalog(Settings(), s3, "az-test") is None
    del s3.objects["az-test/catalog.json"]["Metadata"]
    assert read_catalog(Settings(), s3, "az-test") is None


def test_manifests_since_walks_the_chain_back_to_the_catalogs_newest_release():
    manifests, files, reports = two_releases("az-test", BASE)
    first, second = sorted(manifests, key=lambda m: m["release_id"])
    s3 = _fake_s3_holding(files)
    store = ReleaseStore(Settings(), s3, "az-test")
    s3.put_object(Key=store.latest_key, Body=json.dumps({"release_id": second["release_id"]}).encode())
    assert [m["release_id"] for m in manifests_since(store, None)] == [second["release_id"], first["release_id"]]
    previous = _json(build_catalog([first], reports))
    assert [m["release_id"] for m in manifests_since(store, previous)] == [second["release_id"]]
    assert manifests_since(store, _json(build_catalog(manifests, reports))) == []


def _chain(n: int) -> list[dict[str, Any]]:
    """``n`` releases of one dataset, oldest first, each with a table in 40 files (as a large election's are) and a
    correction."""
    manifests, _, _ = two_releases("az-test", BASE)
    out: list[dict[str, Any]] = []
    for i in range(n):
        m = copy.deepcopy(manifests[1])
        m.update(release_id=f"20250201T{i // 60:02d}{i % 60:02d}00Z-{i:012x}", created_at=f"2025-02-01T{i // 60:02d}:"
                 f"{i % 60:02d}:00Z", previous_release=out[-1]["release_id"] if out else None)
        m["changes"]["previous_release"] = m["previous_release"]
        shas = [hashlib.sha256(f"{i}-{k}".encode()).hexdigest() for k in range(40)]
        m["tables"][STATION_TURNOUT].update(path=None, url=None, files=[
            {"key": f"az-test/tables/{STATION_TURNOUT}/{sha}.parquet", "rows": 2, "bytes": 10, "sha256": sha}
            for sha in shas])
        out.append(m)
    return out


def _size(catalog: dict[str, Any]) -> int:
    return len(json_document(catalog, sort_keys=False))  # as publish_catalog writes it


def test_fifty_releases_list_files_only_for_the_latest_and_grow_by_a_small_constant():
    chain = _chain(50)
    catalog = build_catalog(chain, {})
    releases = catalog["releases"]
    assert FULL_ENTRIES == 1 and len(releases) == 50
    assert [r["release_id"] for r in releases if "tables" in r] == [chain[-1]["release_id"]]
    assert len(releases[0]["tables"][STATION_TURNOUT]["files"]) == 40 and releases[0]["changes"]["corrections"]
    assert releases[1]["changes"]["correction_count"] == 1 and "corrections" not in releases[1]["changes"]
    # Only the tables whose rows changed are counted in a summary.
    assert releases[1]["changes"]["tables"] == {STATION_TURNOUT: {"added": 1, "changed": 1, "removed": 0}}
    sizes = {n: _size(build_catalog(chain[:n], {})) for n in (2, 3, 10, 11, 49, 50)}
    growth = {sizes[n + 1] - sizes[n] for n in (2, 10, 49)}
    full_entry = len(json_document(releases[0], sort_keys=False))
    assert max(growth) - min(growth) <= 8, growth  # the same each release (ids of one length)
    assert max(growth) < 1200 and max(growth) * 8 < full_entry, (growth, full_entry)


def test_a_catalog_built_one_release_at_a_time_equals_one_built_from_every_manifest():
    chain = _chain(5)
    previous = None
    for manifest in chain:
        previous = _json(build_catalog([manifest], {}, None, previous))
    assert previous == _json(build_catalog(chain, {}))
    # Summaries are kept like full entries: the next publish reads no manifest of these five again.
    assert set(reusable_entries(previous)) == {m["release_id"] for m in chain}
