"""Text search ranks every match by listens, not only the first matches in track-id order.

A real catalogue is published (`phono publish`) and searched through the server's
queries: with more matches than any window of first matches, the most listened
match, ingested last (the highest track id), still comes first.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.serve.queries import MAX_LIMIT, MAX_OFFSET, PublishedDB
from phonotheque.workspace import Workspace
from tests.select_helpers import T, records

MANY = MAX_OFFSET + MAX_LIMIT + 100  # more matches than a page walk can reach


def _publish(ws: Workspace, tracks: list[T]) -> PublishedDB:
    with ws.store() as store:
        store.write(records(tracks))
    res = CliRunner().invoke(main, ["publish", "-w", str(ws.root)])
    assert res.exit_code == 0, res.output
    return PublishedDB(ws.publish / "metadata.sqlite", cache_bytes=0)


def test_most_listened_match_first_whatever_its_track_id(ws: Workspace) -> None:
    tracks = [T(f"Love Song {i}", listens=1 + i % 7, artist=f"a{i % 13}") for i in range(MANY)]
    tracks += [T("Endless Love", listens=10**6), T("Love Me Do", listens=10**5)]
    db = _publish(ws, tracks)
    page = db.search("love", 20, 0)
    assert [r["title"] for r in page.results[:2]] == ["Endless Love", "Love Me Do"]
    listens = [r["listens"] for r in page.results]
    assert listens == sorted(listens, reverse=True)
    # a prefix and a two-word query rank the same way
    assert db.search("lov", 1, 0).results[0]["title"] == "Endless Love"
    assert db.search("endless lo", 5, 0).results[0]["title"] == "Endless Love"
    # every page continues in listens order
    pages = [db.search("love", MAX_LIMIT, o).results for o in range(0, MAX_OFFSET + 1, MAX_LIMIT)]
    seen = [r["listens"] for p in pages for r in p]
    assert len(seen) == MAX_OFFSET + MAX_LIMIT and seen == sorted(seen, reverse=True)
    assert len({r["id"] for p in pages for r in p}) == len(seen)


def test_title_matches_before_other_fields_across_all_matches(ws: Workspace) -> None:
    """Tracks with the words in their title come first, most listened first, even when the
    only title match has the highest id and many popular tracks match by artist."""
    tracks = [T(f"Song {i}", listens=1000 + i, artist="Love Unlimited") for i in range(MANY)]
    tracks += [T("Love Letter", listens=3)]
    db = _publish(ws, tracks)
    results = db.search("love", 3, 0).results
    assert [r["title"] for r in results] == ["Love Letter", f"Song {MANY - 1}", f"Song {MANY - 2}"]


def _published(tmp_path: Path, engine: str, recordings: list[dict[str, object]]) -> Path:
    """A workspace of ``engine`` holding ``recordings`` (MusicBrainz JSON), published."""
    dump = tmp_path / "recordings.jsonl"
    dump.write_text("".join(orjson.dumps(r).decode() + "\n" for r in recordings),
                    encoding="utf-8")
    root = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--engine", engine, str(root)]).exit_code == 0
    for args in (["ingest", "musicbrainz", str(dump)], ["publish"]):
        res = runner.invoke(main, [*args[:2], "-w", str(root), *args[2:]])
        assert res.exit_code == 0, res.output
    return root


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_title_of_compatibility_characters_is_found_as_it_is_written(
        tmp_path: Path, engine: str) -> None:
    """Titles in full-width letters (vaporwave's ＭＡＣＩＮＴＯＳＨ ＰＬＵＳ), ligatures and
    half-width kana are real MusicBrainz content. The index holds them as written, but the
    query was NFKC-normalised (ＭＡＣＩＮＴＯＳＨ -> MACINTOSH), so searching a title
    exactly as the page shows it found nothing, on both engines. Now the text as typed and
    its NFKC form are both asked for."""
    titles = {"1": "ＭＡＣＩＮＴＯＳＨ ＰＬＵＳ", "2": "ﬁnal ﬂight", "3": "ｶﾞｰﾙ ﾌﾚﾝﾄﾞ",
              "4": "Macintosh Tribute", "5": "ǅungla"}
    root = _published(tmp_path, engine, [
        {"id": f"00000000-0000-4000-8000-00000000000{k}", "title": t, "length": 1000}
        for k, t in titles.items()])
    db = PublishedDB(root / "publish" / "metadata.sqlite", cache_bytes=0)
    try:
        for title in titles.values():
            assert title in [r["title"] for r in db.search(title, 20, 0).results], title
        # the first word as typed finds its title; its plain form still finds the plain one
        assert sorted(r["title"] for r in db.search("ＭＡＣＩＮＴＯＳＨ", 20, 0).results) == [
            "Macintosh Tribute", "ＭＡＣＩＮＴＯＳＨ ＰＬＵＳ"]
        assert [r["title"] for r in db.search("ｶﾞｰﾙ", 20, 0).results] == ["ｶﾞｰﾙ ﾌﾚﾝﾄﾞ"]
        assert [r["title"] for r in db.search("macintosh", 20, 0).results] == [
            "Macintosh Tribute"]
    finally:
        db.close()


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_every_track_sharing_an_isrc_is_listed(tmp_path: Path, engine: str) -> None:
    """An ISRC carried by more tracks than MAX_ISRC_MATCHES (100): searching it paged
    through the first 100 only (next_offset null at 100, the others never listed), and
    /api/isrc said count 100 with nothing telling that more carry it. Now the search
    pages through every one, and /api/isrc gives the total beside the tracks it lists."""
    from starlette.testclient import TestClient

    from phonotheque.serve.app import ServeOptions, create_app
    from phonotheque.serve.queries import MAX_ISRC_MATCHES

    n = MAX_ISRC_MATCHES + 50
    root = _published(tmp_path, engine, [
        {"id": f"00000000-0000-4000-8000-{i:012d}", "title": f"Cover {i}", "length": 1000,
         "isrcs": ["NLZZZ0000001"]} for i in range(n)])
    db = PublishedDB(root / "publish" / "metadata.sqlite", cache_bytes=0)
    try:
        seen: list[int] = []
        offset: int | None = 0
        while offset is not None:
            page = db.search("nl-zzz-00-00001", 20, offset)
            assert page.kind == "isrc"
            seen += [r["id"] for r in page.results]
            offset = page.next_offset
        assert len(seen) == len(set(seen)) == n and seen == sorted(seen)
    finally:
        db.close()
    client = TestClient(create_app(ServeOptions(root / "publish")))
    body = client.get("/api/isrc/NLZZZ0000001").json()
    assert (body["count"], body["total"], len(body["results"])) == (
        MAX_ISRC_MATCHES, n, MAX_ISRC_MATCHES)
