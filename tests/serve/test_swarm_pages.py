"""Swarm health on the torrents page and API, and the adopt form, from publish/torrents.json."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from phonotheque.serve.app import ServeOptions, create_app
from tests.serve.published import build_published

# name -> (band, size, seeders, obsolete); names as in tests/serve/published.py
HEALTH = {
    "phonotheque-w1-band1": (1, 5_000, 2, False),
    "phonotheque-w1-band2": (2, 4_000, 7, False),
    "phonotheque-w1-band3": (3, 3_000, None, False),
    "phonotheque-w1-metadata": (None, 3_500_000, 12, False),
    "phonotheque-w1-art": (None, 12_000_000, 0, False),
    "phonotheque-w0-band1": (1, 1_000, 0, True),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("publish"))


def make_folder(publish: Path) -> Path:
    build_published(publish / "metadata.sqlite")
    (publish / "torrents").mkdir()
    entries = []
    for name, (band, size, seeders, obsolete) in HEALTH.items():
        (publish / "torrents" / f"{name}.torrent").write_bytes(f"d4:name{len(name)}:{name}e".encode())
        entries.append({
            "display_name": name, "band": band, "data_size": size, "obsolete": obsolete,
            "seeders": seeders, "leechers": 1 if seeders is not None else None,
            "completed": 3 if seeders is not None else None,
            "stats_scraped_at": "2026-12-01T12:00:00+00:00" if seeders is not None else None,
            "currently_seeding": name == "phonotheque-w1-band1", "embargo": False,
            "partially_broken": False, "magnet_link": f"magnet:?xt=urn:btih:{name}",
            "torrent": f"torrents/{name}.torrent",
        })  # fmt: skip
    (publish / "torrents.json").write_bytes(orjson.dumps(entries))
    return publish


@pytest.fixture(scope="module")
def client(folder: Path) -> TestClient:
    return TestClient(create_app(ServeOptions(folder)))


def test_api_torrents_carry_health_risk_and_band_totals(client: TestClient) -> None:
    body = client.get("/api/torrents").json()
    by = {t["name"]: t for t in body["torrents"]}
    assert by["phonotheque-w1-band1"]["seeders"] == 2
    assert by["phonotheque-w1-band1"]["risk"] == "red"
    assert by["phonotheque-w1-band1"]["currently_seeding"] is True
    assert by["phonotheque-w1-band2"]["risk"] == "amber"
    assert by["phonotheque-w1-metadata"]["risk"] == "green"
    assert by["phonotheque-w1-band3"]["risk"] == "unknown"
    assert by["phonotheque-w1-band3"]["stats_scraped_at"] is None
    bands = {b["band"]: b for b in body["bands"]}
    assert bands[1] == {"band": 1, "torrents": 1, "at_risk": 1, "never_scraped": 0, "seeders": 2}
    assert bands[None]["torrents"] == 2 and bands[None]["at_risk"] == 1  # art: 0 seeders
    assert bands[3]["never_scraped"] == 1


def test_sorting_by_seeders(client: TestClient) -> None:
    names = [t["name"] for t in client.get("/api/torrents?sort=seeders").json()["torrents"]]
    assert names[0] == "phonotheque-w1-band3"  # never scraped sorts as the fewest
    assert names[-1] == "phonotheque-w1-metadata"
    desc = [t["name"] for t in client.get("/api/torrents?sort=seeders&order=desc&limit=2")
            .json()["torrents"]]
    assert desc == ["phonotheque-w1-metadata", "phonotheque-w1-band2"]
    assert client.get("/api/torrents?sort=nope").json()["error"]["code"] == "bad_sort"


def test_page_colours_sorts_and_totals_without_javascript(client: TestClient) -> None:
    r = client.get("/torrents?sort=seeders&order=desc")
    html = r.text
    assert r.status_code == 200 and "<script" not in html
    assert "content-security-policy" in r.headers
    assert 'class="n risk-red">2' in html and 'class="n risk-amber">7' in html
    assert "band 01: 1 torrent, " in html and "1 under 4 seeders" in html
    assert html.index("phonotheque-w1-metadata") < html.index("phonotheque-w1-band2")
    assert 'href="/torrents?sort=seeders&amp;order=asc"' in html  # next click flips the order


def test_adopt_api_form_and_downloads(client: TestClient) -> None:
    # current torrents by (seeders, band): art 0 (no band), band1 2, band2 7, band3 unknown = 0
    # -> band3 (0, band 3) before art (0, no band), then band1, band2, metadata
    body = client.get("/api/adopt", params={"budget": "10000"}).json()
    names = [t["display_name"] for t in body["torrents"]]
    assert names == ["phonotheque-w1-band3", "phonotheque-w1-band1"]  # art too big; band2 no room
    assert body["total_size"] == 8_000 and body["skipped"] == 3
    assert "phonotheque-w0-band1" not in str(body)  # obsolete: never offered
    capped = client.get("/api/adopt", params={"budget": "1TB", "max_seeders": "2"}).json()
    assert {t["display_name"] for t in capped["torrents"]} == {
        "phonotheque-w1-band3", "phonotheque-w1-art", "phonotheque-w1-band1"}
    assert client.get("/api/adopt").json()["error"]["code"] == "missing_budget"
    assert client.get("/api/adopt?budget=lots").json()["error"]["code"] == "bad_budget"
    page = client.get("/adopt?budget=10kB")
    assert page.status_code == 200 and "<script" not in page.text
    assert "phonotheque-w1-band3" in page.text and 'action="/adopt"' in page.text
    z = zipfile.ZipFile(io.BytesIO(client.get("/adopt.zip?budget=10kB").content))
    assert sorted(z.namelist()) == ["magnets.txt", "phonotheque-w1-band1.torrent",
                                    "phonotheque-w1-band3.torrent"]
    assert client.get("/adopt.txt?budget=10kB").text.splitlines() == [
        "magnet:?xt=urn:btih:phonotheque-w1-band3", "magnet:?xt=urn:btih:phonotheque-w1-band1"]
    assert client.get("/adopt?budget=x").status_code == 400


def test_index_is_reread_when_health_changes(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    client = TestClient(create_app(ServeOptions(folder)))
    by = {t["name"]: t for t in client.get("/api/torrents").json()["torrents"]}
    assert by["phonotheque-w1-band2"]["seeders"] == 7
    index = folder / "torrents.json"
    entries = orjson.loads(index.read_bytes())
    for e in entries:
        if e["display_name"] == "phonotheque-w1-band2":
            e["seeders"] = 1
    index.write_bytes(orjson.dumps(entries))
    st = index.stat()
    os.utime(index, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    by = {t["name"]: t for t in client.get("/api/torrents").json()["torrents"]}
    assert by["phonotheque-w1-band2"]["seeders"] == 1 and by["phonotheque-w1-band2"]["risk"] == "red"
