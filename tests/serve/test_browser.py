"""The search page in a real headless Chromium (Debian's), against uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phonotheque.serve.app import ServeOptions
from phonotheque.serve.server import background
from tests.require import require_module, require_tool

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def base_url(publish_dir: Path) -> Iterator[str]:
    with background(ServeOptions(publish_dir, host="127.0.0.1", port=0)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require_tool(CHROMIUM)
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_search_open_track_see_magnet(browser, base_url: str, tmp_path: Path) -> None:
    page = browser.new_page(java_script_enabled=False)  # the page must work without JS
    page.goto(base_url)
    assert page.title().startswith("Phonothèque")
    page.get_by_label("Search by title, artist, release or ISRC").fill("arzte")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?q=arzte")
    results = page.locator("ol.results > li")
    assert results.count() == 1
    assert "Die Ärzte" in results.first.inner_text()
    results.first.get_by_role("link", name="Lady").click()
    page.wait_for_url("**/track/*")
    assert page.locator("h1").inner_text() == "Lady"
    magnet = page.get_by_role("link", name="Magnet link for phonotheque-w1-")
    href = magnet.first.get_attribute("href")
    assert href is not None and href.startswith("magnet:?xt=urn:btih:")
    assert "Path in torrent" in page.content()
    page.screenshot(path=str(tmp_path / "track.png"), full_page=True)
    assert (tmp_path / "track.png").stat().st_size > 10_000
    page.close()


def test_isrc_search_and_pages(browser, base_url: str) -> None:
    page = browser.new_page()
    page.goto(base_url + "search?q=JP-A60-01-02450")  # hyphenated ISRC opens the track
    page.wait_for_url("**/track/*")
    assert page.locator("h1").inner_text() == "サマーれげぇ!レインボー"
    for path, heading in [("torrents", "Torrents"), ("coverage", "Coverage of listens"),
                          ("stats", "Statistics"), ("api", "JSON API")]:
        page.goto(base_url + path)
        assert page.locator("h1").inner_text() == heading
    page.goto(base_url + "search?q=the")
    page.get_by_role("link", name="Next →").click()
    assert "offset=20" in page.url
    assert page.locator("ol.results > li").count() > 0
    page.close()
