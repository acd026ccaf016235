"""Search semantics over a published DB built from real MusicBrainz data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from phonotheque.errors import WorkspaceError
from phonotheque.serve.queries import BadQuery, PublishedDB, fts_query


@pytest.fixture(scope="module")
def db(publish_dir: Path) -> PublishedDB:
    return PublishedDB(publish_dir / "metadata.sqlite")


def titles(page) -> list[str]:
    return [r["title"] for r in page.results]


def test_fts_query_quotes_every_token() -> None:
    assert fts_query('NEAR("a" OR b*) AND -c') == '"NEAR" "a" "OR" "b" "AND" "c"'
    assert fts_query("hey bo") == '"hey" "bo"*'
    assert fts_query("  ") == ""
    assert fts_query('"') == ""
    # decomposed accents are composed first, so "Ärzte" stays one token
    assert fts_query("A\u0308rzte") == '"Ärzte"*'


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("arzte", "Lady"),  # diacritic-insensitive: Die Ärzte
        ("ÄRZTE", "Lady"),
        ("thinking out", "Thinking Out Loud"),  # prefix on the last word
        ("sheer", "Thinking Out Loud"),  # artist prefix
        ("чайков", "Act 2: IVc. Dance des Cygnes - Dance des Cygnes"),  # Cyrillic artist alias
        ("サマー", "サマーれげぇ!レインボー"),  # Japanese title prefix
        ("7人祭", "サマーれげぇ!レインボー"),
        ("百花繚乱", "百花繚乱"),
        ("surrender hey", "Hey Boy Hey Girl"),  # release + title
    ],
)
def test_text_search_finds(db: PublishedDB, q: str, expected: str) -> None:
    page = db.search(q, 20, 0)
    assert page.kind == "text"
    assert expected in titles(page), (q, titles(page))


def test_isrc_query_goes_to_isrc_index(db: PublishedDB) -> None:
    for q in ("GBAAA9900303", "gb-aaa-99-00303", " GB AAA 99 00303 "):
        page = db.search(q, 20, 0)
        assert page.kind == "isrc"
        assert titles(page) == ["Hey Boy Hey Girl"]
        assert page.results[0]["isrcs"] == ["GBAAA9900303"]
    # the start of an ISRC (6-11 characters, any case, spaces or hyphens) is a range of
    # track_isrc's index: schema 3's text index has no ISRC column
    for q in ("GBAAA99003", "gb-aaa-99-003", " gbaaa9 "):
        page = db.search(q, 50, 0)
        assert page.kind == "isrc_prefix", q
        assert "Hey Boy Hey Girl" in titles(page)
        start = q.strip().replace("-", "").upper()
        assert all(any(c.startswith(start) for c in r["isrcs"]) for r in page.results)
    # no code starts so: it may be a word, so a text search
    assert db.search("ZZZZZ9", 20, 0).kind == "text"
    assert db.search("hello", 20, 0).kind == "text"  # letters only: never a code
    assert db.by_isrc("JPA600102450")[0]["title"] == "サマーれげぇ!レインボー"
    assert db.by_isrc("ZZZZZ0000000") == []


def test_isrc_prefix_pages_in_code_order_without_repeats(publish_dir: Path) -> None:
    """Tracks whose ISRCs start the same way, each once (a track with two such codes
    too), ordered by their first such code, paged like a text search."""
    fresh = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=0)
    conn = fresh._conn()
    start, n = conn.execute(
        "SELECT substr(isrc, 1, 6) s, count(DISTINCT track_id) n FROM track_isrc"
        " GROUP BY s ORDER BY n DESC, s LIMIT 1").fetchone()
    assert n >= 3, "the fixture needs a registrant-year with several tracks"
    want = [r[0] for r in conn.execute(
        "SELECT track_id FROM track_isrc WHERE substr(isrc, 1, 6) = ?"
        " GROUP BY track_id ORDER BY min(isrc), track_id", (start,))]
    got: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = fresh.search(start, 2, offset)
        assert page.kind == "isrc_prefix" and len(page.results) <= 2
        got += [r["id"] for r in page.results]
        offset = page.next_offset
    assert got == want
    fresh.close()


def test_a_schema_2_database_is_still_served(publish_dir: Path, tmp_path: Path) -> None:
    """An archive published before schema 3 (track_fts with its text and an isrc column)
    is served as it is: the server asks track_fts for rowids of title, artist and release
    matches only, and ISRCs go through track_isrc in both."""
    old = tmp_path / "metadata.sqlite"
    src = sqlite3.connect(publish_dir / "metadata.sqlite")
    dst = sqlite3.connect(old)
    src.backup(dst)
    src.close()
    dst.executescript("""
        DROP TABLE track_fts;
        CREATE VIRTUAL TABLE track_fts USING fts5(title, artists, release, isrc,
            tokenize='unicode61 remove_diacritics 2', prefix='2 3');
        INSERT INTO track_fts(rowid, title, artists, release, isrc)
            SELECT o.pos, t.title, coalesce(t.artist_credit, ''), coalesce(r.title, ''),
                   coalesce((SELECT group_concat(isrc, ' ') FROM track_isrc i
                             WHERE i.track_id = t.id), '')
            FROM search_order o JOIN track t ON t.id = o.track_id
            LEFT JOIN release r ON r.id = t.release_id;
        UPDATE info SET value = '2' WHERE key = 'schema_version';
        PRAGMA user_version = 2;""")
    dst.commit()
    dst.close()
    served = PublishedDB(old)
    new = PublishedDB(publish_dir / "metadata.sqlite")
    for q in ("sheer", "surrender hey", "GBAAA99003", "GBAAA9900303"):
        assert served.search(q, 20, 0) == new.search(q, 20, 0), q
    served.close()
    new.close()
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE info SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(WorkspaceError, match="schema version 1, this phono reads 2, 3"):
        PublishedDB(old)


def test_results_carry_where_the_file_is(db: PublishedDB) -> None:
    (track,) = db.by_isrc("GBAHS1400099")
    assert track["title"] == "Thinking Out Loud"
    assert [a["name"] for a in track["artists"]] == ["Ed Sheeran"]
    assert track["duration_ms"] == 281000
    f = track["files"][0]
    assert f["path"].endswith(".flac") or f["path"].endswith(".opus")
    assert len(f["sha256"]) == 64
    assert f["torrent"]["magnet"].startswith("magnet:?xt=urn:btih:")
    assert f["torrent"]["name"].startswith("phonotheque-w1-")


def test_pagination_is_stable_and_complete(db: PublishedDB) -> None:
    everything = db.search("the", 100, 0)
    assert everything.next_offset is None
    ids = [r["id"] for r in everything.results]
    paged: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = db.search("the", 7, offset)
        paged += [r["id"] for r in page.results]
        offset = page.next_offset
    assert paged == ids and len(ids) > 14


def test_hostile_text_is_just_text(db: PublishedDB) -> None:
    for q in ['"', "*", "NEAR(", "a OR b", "')--", "\x00", "title:love", "^love", "{title}: x"]:
        assert db.search(q, 5, 0).kind in ("text", "empty")


def test_limits(db: PublishedDB) -> None:
    with pytest.raises(BadQuery, match="limit"):
        db.search("x", 0, 0)
    with pytest.raises(BadQuery, match="limit"):
        db.search("x", 101, 0)
    with pytest.raises(BadQuery, match="offset"):
        db.search("x", 10, -1)
    with pytest.raises(BadQuery, match="too long"):
        db.search("x" * 201, 10, 0)


def test_track_torrents_stats_coverage(db: PublishedDB) -> None:
    assert db.track(1062699)["title"] == "Hey Boy Hey Girl"  # type: ignore[index]
    assert db.track(1) is None
    torrents = db.torrents()
    assert [t["obsolete"] for t in torrents] == sorted(t["obsolete"] for t in torrents)
    assert db.stats()["bands"] == {"1": 40, "2": 60, "3": 27}
    curve = db.coverage()
    assert curve[0] == (0, 0.0) and curve[-1][1] == pytest.approx(1.0)
    assert all(a[1] <= b[1] for a, b in zip(curve, curve[1:], strict=False))


def test_opened_read_only(db: PublishedDB) -> None:
    with pytest.raises(sqlite3.OperationalError):
        db._conn().execute("DELETE FROM track")


def test_refuses_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no published metadata"):
        PublishedDB(tmp_path / "metadata.sqlite")
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x(y)").connection.commit()
    with pytest.raises(WorkspaceError, match="not a published metadata database"):
        PublishedDB(other)


def test_every_match_is_returned_title_first_then_by_listens(publish_dir: Path) -> None:
    fresh = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=0)
    conn = fresh._conn()
    anywhere = {r[0] for r in conn.execute(
        "SELECT o.track_id FROM track_fts f JOIN search_order o ON o.pos = f.rowid"
        " WHERE track_fts MATCH '\"the\"'")}
    results = fresh.search("the", 100, 0).results
    assert {r["id"] for r in results} == anywhere and len(anywhere) > 6
    titled = [r for r in results if "the" in r["title"].lower().split()]
    assert results[: len(titled)] == titled
    for group in (titled, results[len(titled):]):
        assert [r["listens"] for r in group] == sorted((r["listens"] for r in group), reverse=True)


def test_title_matches_first_then_most_listened(db: PublishedDB) -> None:
    page = db.search("surrender", 100, 0)
    titled = [r for r in page.results if "surrender" in r["title"].lower()]
    others = page.results[len(titled) :]
    assert titled and others  # "Surrender" is also a release title
    assert page.results[: len(titled)] == titled
    assert all("surrender" not in r["title"].lower() for r in others)
    for group in (titled, others):
        listens = [r["listens"] for r in group]
        assert listens == sorted(listens, reverse=True)


def test_common_last_word_is_taken_as_typed(
    publish_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phonotheque.serve import queries

    def titles(probe: int) -> set[str]:
        monkeypatch.setattr(queries, "EXACT_PROBE", probe)
        fresh = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=0)
        return {r["title"] for r in fresh.search("under", 100, 0).results}

    # "under" is a word of 2 tracks ("Under the Influence"); as a prefix it also
    # finds "The Sunshine Underground"
    assert "The Sunshine Underground" in titles(1000)
    assert titles(2) == {"Under the Influence"}
    assert "The Sunshine Underground" in titles(3)


def test_no_next_page_beyond_the_offset_limit(
    publish_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phonotheque.serve import queries

    fresh = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=0)
    monkeypatch.setattr(queries, "MAX_OFFSET", 10)
    assert fresh.search("the", 5, 5).next_offset == 10  # page 10..14 may be asked for
    assert fresh.search("the", 5, 6).next_offset is None  # 11 would be refused
    assert fresh.torrents(1, 5)[0]["id"] > 0  # torrents page with their own bound


def test_answer_cache_is_bounded_by_bytes(publish_dir: Path) -> None:
    budget = 64 << 10
    db = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=budget)
    ids = [r[0] for r in db._conn().execute("SELECT id FROM track")]
    for word in ("the", "love", "bug", "a", "e", "o", "i", "u", "s", "t", "n", "r"):
        for offset in range(0, 40, 10):
            db.search(word, 100, offset)
    for track_id in ids:
        db.track(track_id)
    assert 0 < db.cache.bytes <= budget and len(db.cache) > 0
    # cached answers come back unchanged, and a hit costs no query
    first = db.track(ids[-1])
    assert db.track(ids[-1]) is first
    # an answer larger than an eighth of the budget is not kept
    tiny = PublishedDB(publish_dir / "metadata.sqlite", cache_bytes=2048)
    page = tiny.search("the", 100, 0)
    assert len(page.results) > 6 and len(tiny.cache) == 0
