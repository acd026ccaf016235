"""The JSON API and the pages, through Starlette's TestClient (in-process ASGI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from phonotheque.errors import WorkspaceError
from phonotheque.serve.app import ServeOptions, create_app


@pytest.fixture(scope="module")
def client(publish_dir: Path) -> TestClient:
    return TestClient(create_app(ServeOptions(publish_dir)), raise_server_exceptions=True)


def test_api_search(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "Ärzte"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["kind"] == "text" and body["results"][0]["artist_credit"] == "Die Ärzte"
    r = client.get("/api/search", params={"q": "the", "limit": 5, "offset": 5})
    body = r.json()
    assert body["count"] == 5 and body["offset"] == 5 and body["next_offset"] == 10


def test_api_isrc(client: TestClient) -> None:
    r = client.get("/api/isrc/gb-aaa-99-00303")
    assert r.status_code == 200
    assert r.json()["isrc"] == "GBAAA9900303"
    assert r.json()["results"][0]["title"] == "Hey Boy Hey Girl"
    r = client.get("/api/isrc/GBAAA990030")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_isrc"
    assert "length 11" in r.json()["error"]["message"]
    r = client.get("/api/isrc/ZZZZZ0000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_api_track_and_lists(client: TestClient) -> None:
    r = client.get("/api/tracks/4223059")
    assert r.status_code == 200 and r.json()["title"] == "サマーれげぇ!レインボー"
    assert r.json()["isrcs"] == ["JPA600102450"]
    for bad in ("abc", "-1", "1.5", "99999999999999999999", "１２"):
        r = client.get(f"/api/tracks/{bad}")
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "bad_id"
    assert client.get("/api/tracks/7").status_code == 404
    body = client.get("/api/torrents", params={"limit": 2}).json()
    assert body["total"] == 6 and body["count"] == 2 and body["next_offset"] == 2
    assert client.get("/api/stats").json()["stats"]["tracks"] == 135
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/search", "/api/isrc/{isrc}", "/api/tracks/{id}", "/api/torrents", "/api/stats",
        "/api/adopt",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/search", "missing_q"),
        ("/api/search?q=x&limit=0", "bad_limit"),
        ("/api/search?q=x&limit=101", "bad_limit"),
        ("/api/search?q=x&limit=ten", "bad_limit"),
        ("/api/search?q=x&offset=401", "bad_offset"),
        ("/api/search?q=" + "x" * 201, "q_too_long"),
        ("/api/torrents?limit=1001", "bad_limit"),
        ("/api/isrc/" + "A" * 41, "invalid_isrc"),
    ],
)
def test_api_rejects_bad_input_with_json_400(client: TestClient, url: str, code: str) -> None:
    r = client.get(url)
    assert r.status_code == 400
    assert r.json()["error"] == {"status": 400, "code": code, "message": r.json()["error"]["message"]}


def test_pages(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and "<form" in home.text and 'role="search"' in home.text
    assert home.headers["x-content-type-options"] == "nosniff"
    page = client.get("/search", params={"q": "love bug"})
    assert page.status_code == 200
    assert "the Love Bug (Big Bug NYC remix)" in page.text and "magnet:?xt=urn:btih:" in page.text
    # an ISRC that names exactly one track opens it
    r = client.get("/search", params={"q": "GBAHS1400099"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/track/")
    track = client.get(r.headers["location"])
    assert "Thinking Out Loud" in track.text and "Ed Sheeran" in track.text
    assert "<script" not in track.text.lower()  # works without JavaScript: there is none
    assert client.get("/track/1").status_code == 404
    assert client.get("/search", params={"q": "x" * 300}).status_code == 400
    torrents = client.get("/torrents").text
    assert "phonotheque-w0-band1" in torrents and "Obsolete" in torrents
    assert "<svg" in client.get("/coverage").text
    assert "archived tracks" in client.get("/stats").text
    assert client.get("/static/style.css").status_code == 200


def test_text_is_escaped(client: TestClient) -> None:
    r = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text


def test_published_coverage_image_is_preferred(tmp_path: Path, publish_dir: Path) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    (folder / "metadata.sqlite").write_bytes((publish_dir / "metadata.sqlite").read_bytes())
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>published chart</title></svg>'
    (folder / "coverage.svg").write_text(svg)
    client = TestClient(create_app(ServeOptions(folder)))
    assert '<img src="/coverage.svg"' in client.get("/coverage").text
    assert client.get("/coverage.svg").text == svg
    assert client.get("/coverage.png").status_code == 404


def test_missing_publish_folder_fails_early(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="phono publish"):
        create_app(ServeOptions(tmp_path))


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/search?q=a&limit=--5", "bad_limit"),
        ("/api/search?q=a&limit=%C2%B2", "bad_limit"),  # '²': str.isdigit() says yes
        ("/api/search?q=a&offset=%C2%B9%C2%B2", "bad_offset"),  # '¹²'
        ("/api/search?q=a&limit=5%C2%B2", "bad_limit"),
        ("/api/search?q=a&limit=" + "9" * 30, "bad_limit"),
        ("/api/torrents?offset=-", "bad_offset"),
        ("/api/tracks/%C2%B2", "bad_id"),
        ("/api/tracks/0", "bad_id"),
        ("/api/tracks/-1", "bad_id"),
        ("/api/tracks/" + "9" * 25, "bad_id"),
    ],
)
def test_hostile_numbers_are_json_400s(client: TestClient, url: str, code: str) -> None:
    r = client.get(url)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", ["/track/%C2%B2", "/track/-3", "/track/abc",
                                 "/search?q=a&offset=%C2%B9%C2%B2", "/search?q=a&limit=--5"])
def test_hostile_numbers_in_pages_are_400s(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 400 and "<html" in r.text.lower()
    assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_every_response_carries_the_security_headers_even_a_500(
    publish_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(ServeOptions(publish_dir))

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.db, "stats", broken)
    client = TestClient(app, raise_server_exceptions=False)
    for url in ("/api/stats", "/stats", "/", "/api/search?q=a", "/no/such/page"):
        r = client.get(url)
        assert r.status_code in (200, 404, 500), url
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY", url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], url
    api = client.get("/api/stats")
    assert api.status_code == 500 and api.json()["error"]["code"] == "internal"
    assert "a bug" not in api.text
