"""The catalog page in a real browser: index.html uploaded to the bucket and opened anonymously in headless
Debian Chromium renders the charts and the release list, every link on it resolves, and a screenshot is kept
under tests/artifacts/ for a human to look at."""

from __future__ import annotations

import shutil
import struct
import subprocess
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from pipelines.settings import Settings
from tests.support.releases import Published, delete_dataset, upload_fake_releases

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,3000"]
CHROMIUM_TIMEOUT_S = 90


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed; as root run infra/install.sh (apt-get install chromium)")
    return found


def _run_chromium(chromium: str, profile: Path, *args: str) -> str:
    run = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG: enough to tell a drawn page from a blank one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture
def published(services: Settings, unique: str) -> Iterator[Published]:
    dataset = f"test-browser-{unique}"
    yield upload_fake_releases(services, dataset)
    delete_dataset(services, dataset)


def test_catalog_page_renders_in_chromium_and_every_link_resolves(published: Published, tmp_path: Path):
    chromium = _chromium()
    page_url = published.url(f"{published.dataset}/index.html")
    assert page_url == f"http://127.0.0.1:17070/ballotstream-releases/{published.dataset}/index.html"

    dom_text = _run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page_url)
    dom = _Dom()
    dom.feed(dom_text)
    assert dom.svgs == 4, "the four charts are drawn"
    assert {"turnout", "seats", "incidents", "incidents-over-time"} <= dom.ids
    for manifest in published.manifests:
        assert f"release-{manifest['release_id']}" in dom.ids
    assert "Protocol re-counted" in dom_text

    checked = set()
    for href in dom.hrefs:
        target, fragment = urldefrag(urljoin(page_url, href))
        if fragment and target == page_url:
            assert fragment in dom.ids, f"anchor {href} has no target"
            continue
        if target in checked:
            continue
        try:
            with urllib.request.urlopen(target, timeout=10) as response:  # anonymous: no credentials anywhere
                assert response.status == 200, target
        except urllib.error.HTTPError as exc:
            pytest.fail(f"link {href} -> {target}: HTTP {exc.code}")
        checked.add(target)
    parquet = [t for t in checked if t.endswith(".parquet")]
    # The latest release's tables; an older release's are linked from its manifest, which the page links.
    latest = max(published.manifests, key=lambda m: m["release_id"])
    assert len(parquet) == len(latest["tables"])
    assert sum(t.endswith("/manifest.json") for t in checked) == len(published.manifests)
    assert any(t.endswith("/catalog.json") for t in checked)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "catalog_index.png"
    shot.unlink(missing_ok=True)
    _run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", page_url)
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1280, 3000)
    # A blank page compresses to a handful of distinct bytes; text and bars give many.
    assert len(set(pixels[: 1280 * 4 * 800])) > 32, "screenshot looks blank"
