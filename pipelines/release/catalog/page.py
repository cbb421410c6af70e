"""``index.html``: the human catalog page of a dataset, one static file with inline SVG charts.

The page loads nothing else (no script, font or stylesheet), and every link is relative to the dataset folder,
so it works when served from the bucket at ``<dataset>/index.html`` on any host, or opened from a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import pyarrow as pa

from pipelines.release.catalog import charts
from pipelines.release.catalog.build import is_full
from pipelines.release.catalog.svg import Series, bar_chart, column_chart

CATALOG_LINK = "catalog.json"
# Contests drawn as charts; every contest shown (those catalog.json lists) still gets its summary and table of
# leading choices.
MAX_CONTEST_CHARTS = 20
KIND_WORDS = {"CANDIDATE": "Candidate contest", "PARTY_LIST": "Party-list contest", "BALLOT_MEASURE": "Ballot measure",
              "RETENTION": "Retention question"}
# Kept inline: an external stylesheet would be another request, and the page must work from a plain bucket.
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#111;line-height:1.45}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
td.n{text-align:right}code{font-size:.85em;word-break:break-all}figure{margin:1rem 0}
.passed{color:#05620f;font-weight:bold}.failed{color:#a00;font-weight:bold}.note{color:#555;font-size:.9em}
ol.releases>li{margin-bottom:1.5rem}a{color:#0b4f8a}
"""

_CHARTS: tuple[tuple[Callable[[dict[str, pa.Table]], Series | None], Callable[[Series], str], str], ...] = (
    (charts.turnout_by_municipality, bar_chart, "station_turnout"),
    (charts.seats_by_party, bar_chart, "seats"),
    (charts.incidents_by_category, bar_chart, "observations"),
    (charts.incidents_over_time, column_chart, "observations"),
)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(n)


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href, quote=True)}">{escape(text)}</a>'


def _gate(gate: dict[str, Any]) -> str:
    verdict = ('<span class="passed">passed</span>' if gate["passed"] else '<span class="failed">failed</span>')
    extra = ""
    if gate.get("warnings"):
        extra = f"; non-blocking warnings: {escape(', '.join(gate['warnings']))}"
    return (f"Quality gate {verdict}: {gate.get('checks_run', 0)} checks, {gate.get('checks_failed', 0)} failed"
            f"{extra} ({_link(gate['report'], 'validation report')})")


def _tables_list(release: dict[str, Any], with_columns: bool) -> str:
    rows = []
    for name, t in release["tables"].items():
        columns = ""
        if with_columns and t["columns"]:
            items = "".join(f"<li><code>{escape(c['name'])}</code> <small>{escape(c['type'])}</small> "
                            f"{escape(c['description'])}</li>" for c in t["columns"])
            columns = f"<details><summary>{len(t['columns'])} columns</summary><ul>{items}</ul></details>"
        title = _link(t["path"], name) if t["path"] else escape(name)
        if t.get("files"):
            # Not a link per file: every publish uploads the page, and at a million stations they were 0.12 MB
            # of it. Read in order, the files are the table; programs take them from catalog.json.
            title += (f"<br><small>{len(t['files']):,} files, listed with their rows, bytes and SHA-256 in "
                      f"{_link(CATALOG_LINK, CATALOG_LINK)} and in {_link(release['manifest'], 'manifest.json')}"
                      "</small>")
        rows.append(f"<tr><th scope=\"row\">{title}</th><td>{escape(t['description'])}"
                    f"{columns}</td><td class=\"n\">{(t['rows'] or 0):,}</td><td class=\"n\">{_size(t['bytes'])}</td>"
                    f"<td><code>{escape(t['sha256'] or '')}</code></td></tr>")
    return ("<table><thead><tr><th scope=\"col\">Table (Parquet)</th><th scope=\"col\">Description</th>"
            "<th scope=\"col\">Rows</th><th scope=\"col\">Size</th><th scope=\"col\">SHA-256</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _changes(changes: dict[str, Any]) -> str:
    if not changes.get("previous_release") and not changes["tables"]:
        return "<p>First release.</p>"
    since = escape(changes.get("previous_release") or "the previous release")
    touched = {n: c for n, c in changes["tables"].items() if any(c.values())}
    if touched:
        rows = "".join(f"<tr><th scope=\"row\">{escape(n)}</th><td class=\"n\">{c['added']:,}</td>"
                       f"<td class=\"n\">{c['changed']:,}</td><td class=\"n\">{c['removed']:,}</td></tr>"
                       for n, c in touched.items())
        table = (f"<table><caption>Rows changed since {since}</caption><thead><tr><th scope=\"col\">Table</th>"
                 "<th scope=\"col\">Added</th><th scope=\"col\">Changed</th><th scope=\"col\">Removed</th></tr>"
                 f"</thead><tbody>{rows}</tbody></table>")
    else:
        table = f"<p>No rows changed since {since}.</p>"
    corrections = changes.get("corrections") or []
    if corrections:
        items = "".join(f"<li>{escape(str(c.get('kind') or 'correction'))} of <code>{escape(str(c.get('key')))}</code>:"
                        f" {escape(str(c.get('reason') or ''))}</li>" for c in corrections)
        table += f"<h4>Corrections ({len(corrections)})</h4><ul class=\"corrections\">{items}</ul>"
    elif changes.get("correction_count"):
        n = changes["correction_count"]
        table += f"<p>{n:,} correction{'s' if n != 1 else ''} (listed in the manifest).</p>"
    return table


def _documents(release: dict[str, Any]) -> str:
    docs = release.get("documents") or {}
    if not docs:
        return ""
    links = ", ".join(_document(key, d) for key, d in docs.items())
    return f"<p>NIST SP 1500-100 v2 election results (JSON, gzip-compressed): {links}</p>"


def _document(key: str, doc: dict[str, Any]) -> str:
    """A link to a document, or to each of its parts, which joined in order are the file."""
    parts = doc.get("parts") or []
    if not parts:
        return _link(doc["path"], key)
    items = "".join(f"<li>{_link(p['path'], p['sha256'][:12])} {_size(p['bytes'])}</li>" for p in parts)
    return (f"<code>{escape(key)}</code> ({_size(doc.get('bytes'))}, sha256 <code>{escape(str(doc.get('sha256')))}"
            f"</code>)<details><summary>{len(parts)} parts: join them in order</summary><ol>{items}</ol></details>")


def _release(release: dict[str, Any], latest: bool) -> str:
    rid = release["release_id"]
    heading = f"{escape(rid)}{' (latest)' if latest else ''}"
    published = f"Published {escape(str(release.get('created_at') or ''))}; {release['rows']:,} rows"
    manifest = _link(release["manifest"], "manifest.json")
    if not is_full(release):
        # Older releases are summaries in catalog.json: the manifest lists their tables, files and documents.
        return (f'<li id="release-{escape(rid, quote=True)}"><h3>{heading}</h3>'
                f"<p>{published}, {_size(release['bytes'])}. Its tables, with a link to each file, and documents "
                f"are listed in its {manifest}.</p><p>{_gate(release['gate'])}</p>{_changes(release['changes'])}"
                "</li>")
    return (f'<li id="release-{escape(rid, quote=True)}"><h3>{heading}</h3>'
            f"<p>{published} in {len(release['tables'])} tables, {_size(release['bytes'])}. {manifest}"
            f"</p>{_documents(release)}<p>{_gate(release['gate'])}</p>{_changes(release['changes'])}"
            f"{_download(release, latest)}</li>")


def _download(release: dict[str, Any], latest: bool) -> str:
    """The latest release's tables are listed once, in the tables section: the page is uploaded by every
    publish, and at a million stations the list of their files is 0.15 MB."""
    if latest:
        return "<p>Its tables are listed under <a href=\"#tables\">Tables in the latest release</a>.</p>"
    return (f"<details><summary>Download the tables of {escape(release['release_id'])}</summary>"
            f"{_tables_list(release, False)}</details>")


def _charts(latest_tables: dict[str, pa.Table]) -> str:
    parts = []
    for compute, draw, needs in _CHARTS:
        series = compute(latest_tables)
        if series is None:
            parts.append(f"<p class=\"note\">No chart: the release has no <code>{escape(needs)}</code> table.</p>")
        else:
            parts.append(draw(series))
    return "".join(parts)


def _progress(contest: dict[str, Any]) -> str:
    reporting, expected = contest.get("stations_reporting"), contest.get("stations_expected")
    if reporting is None:
        return "Reporting progress unknown."
    if expected is None:
        return f"{reporting:,} polling stations reporting; how many are expected is unknown."
    return f"{reporting:,} of {expected:,} polling stations reporting."


def _outcome(contest: dict[str, Any]) -> str:
    """Who won (or which option), with the margin; "leading" until every expected station has reported."""
    winners = contest.get("winners")
    if winners is None:
        reason = " (the number of seats is unknown)" if contest.get("decided_by") == "seats" else ""
        return f"Outcome not determined{reason}."
    complete = (contest.get("stations_expected") is not None
                and contest.get("stations_reporting") == contest["stations_expected"])
    names = ", ".join(w["label"] for w in winners) or "none"
    if contest.get("decided_by") == "option":
        verb = "Outcome" if complete else "Leading option"
    else:
        verb = "Elected" if complete else "Leading"
    margin = contest.get("margin")
    by = f", by a margin of {margin:,} votes" if margin is not None else ""
    return f"{verb}: {names}{by}."


def _share(share: float | None) -> str:
    return "" if share is None else f"{share:.1%}"


def _contest(contest: dict[str, Any], tables: dict[str, pa.Table], chart: bool) -> str:
    rows = "".join(
        f"<tr><th scope=\"row\">{escape(t['label'])}</th><td class=\"n\">{t['votes']:,}</td>"
        f"<td class=\"n\">{_share(t['share'])}</td></tr>" for t in contest["top_selections"])
    kind = KIND_WORDS.get(str(contest.get("kind")), "Contest")
    office = f" for {escape(contest['office'])}" if contest.get("office") else ""
    election = f" ({escape(contest['election'])})" if contest.get("election") else ""
    total = contest.get("total_votes")
    table = (f"<table><caption>Leading choices in {escape(contest['name'])}</caption><thead><tr>"
             "<th scope=\"col\">Choice</th><th scope=\"col\">Votes</th><th scope=\"col\">Share</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>" if rows else "<p class=\"note\">No votes reported yet.</p>")
    drawn = bar_chart(charts.contest_results(tables, contest)) if chart and rows else ""
    return (f"<article><h3>{escape(contest['name'])}</h3><p>{kind}{office}{election}. "
            f"{escape(_outcome(contest))} {escape(_progress(contest))}"
            f"{'' if total is None else f' {total:,} votes in total.'}</p>{table}{drawn}</article>")


def _table_link(catalog: dict[str, Any], name: str) -> str:
    """A link to table ``name`` of the latest release: its file, or the table list when it is several files (its
    name in code when the release lacks it)."""
    releases = catalog.get("releases") or []
    table = ((releases[0].get("tables") if releases else None) or {}).get(name)
    if not table:
        return f"<code>{escape(name)}</code>"
    return _link(table["path"] or "#tables", name)


def _contests_note(catalog: dict[str, Any]) -> str:
    section = catalog["contests"]
    shown, total = section["listed"], section["total"]
    if shown < total:
        return (f"<p class=\"note\">{shown:,} of {total:,} contests; all in "
                f"{_table_link(catalog, 'contest_summary')}. Shown are the {shown:,} with the most votes, most first"
                f" (ties by contest id; as {_link(CATALOG_LINK, CATALOG_LINK)} lists them), with charts for the first "
                f"{min(shown, MAX_CONTEST_CHARTS)}; {_table_link(catalog, 'contest_summary')} has the outcome, "
                f"margin and reporting progress of every contest, {_table_link(catalog, 'contest_results')} its "
                "votes per choice.</p>")
    if total > MAX_CONTEST_CHARTS:
        return (f"<p class=\"note\">Charts are drawn for the first {MAX_CONTEST_CHARTS} of {total} contests; every "
                "contest lists its leading choices.</p>")
    return ""


def _contests(catalog: dict[str, Any], tables: dict[str, pa.Table]) -> str:
    shown = (catalog.get("contests") or {}).get("items") or []
    if not shown:
        return ("<section id=\"contests\"><h2>Contests</h2><p class=\"note\">The latest release has no contest "
                "tables.</p></section>")
    items = "".join(_contest(c, tables, i < MAX_CONTEST_CHARTS) for i, c in enumerate(shown))
    return f"<section id=\"contests\"><h2>Contests in the latest release</h2>{_contests_note(catalog)}{items}</section>"


def render_index(catalog: dict[str, Any], latest_tables: dict[str, pa.Table]) -> str:
    """Render the catalog page.

    Args:
        catalog: what :func:`pipelines.release.catalog.build_catalog` returned.
        latest_tables: the latest release's tables by name (those the charts need: ``station_turnout`` or a
            municipality-level turnout table, ``seats``, ``observations``; ``divisions`` and ``parties`` for
            names). Missing tables leave a note instead of a chart.

    Returns:
        The whole HTML document.
    """
    dataset = escape(str(catalog.get("dataset") or "dataset"))
    releases = catalog.get("releases", [])
    latest = releases[0] if releases else None
    if latest is None:
        summary = "<p>No release has been published yet.</p>"
        tables = ""
    else:
        summary = (f"<p>Latest release <a href=\"#release-{escape(latest['release_id'], quote=True)}\">"
                   f"{escape(latest['release_id'])}</a>, published {escape(str(latest.get('created_at') or ''))}. "
                   f"{len(releases)} release{'s' if len(releases) != 1 else ''} in total. Machine-readable list: "
                   f"{_link(CATALOG_LINK, CATALOG_LINK)}.</p>")
        listing = (_tables_list(latest, True) if is_full(latest)
                   else f"<p>Listed in its {_link(latest['manifest'], 'manifest.json')}.</p>")
        tables = (f'<section id="tables"><h2>Tables in the latest release</h2><p>{_gate(latest["gate"])}</p>'
                  f"{listing}</section>")
    items = "".join(_release(r, i == 0) for i, r in enumerate(releases))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,'
        f' initial-scale=1"><title>{dataset}: Ballotstream open election data</title><style>{_STYLE}</style>'
        f"</head><body><header><h1>{dataset}</h1><p>Open election data from Ballotstream: versioned Parquet "
        "releases, each checked by a quality gate before publication. Releases are never changed; each new one "
        f"lists what changed since the previous.</p>{summary}<nav aria-label=\"Sections\"><ul>"
        '<li><a href="#charts">Charts</a></li><li><a href="#contests">Contests</a></li>'
        '<li><a href="#tables">Tables</a></li>'
        '<li><a href="#releases">All releases</a></li></ul></nav></header><main>'
        f'<section id="charts"><h2>The latest release at a glance</h2>{_charts(latest_tables)}</section>'
        f"{_contests(catalog, latest_tables)}"
        f"{tables}"
        f'<section id="releases"><h2>All releases, newest first</h2><ol class="releases">{items}</ol></section>'
        "</main><footer><p>Read a table in Python: <code>pyarrow.parquet.read_table(pyarrow.py_buffer("
        "urllib.request.urlopen(url).read()))</code> with the table's link as <code>url</code>.</p></footer>"
        "</body></html>\n"
    )
