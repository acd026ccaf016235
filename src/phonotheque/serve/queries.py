"""Read-only queries over the published metadata database (``publish/metadata.sqlite``).

The database is opened with ``mode=ro&immutable=1``: SQLite then takes no locks and
reads no WAL, which is right for a file that never changes while it is served and
is what makes one connection per thread cheap. Every query is parametrised; user
text reaches FTS5 only as quoted tokens built by :func:`fts_query`.

Results are plain dicts (JSON-ready) so the HTML templates and the JSON API share
one shape; they are cached (the file is immutable) and must not be mutated.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from phonotheque import isrc as isrc_mod
from phonotheque.errors import InputError, WorkspaceError
from phonotheque.publish.dbschema import PUBLISH_SCHEMA_VERSION, READABLE_SCHEMA_VERSIONS
from phonotheque.serve.cache import ByteLRU
from phonotheque.sqlite_uri import file_uri

# Cached answers per server worker, in bytes of their JSON.
DEFAULT_CACHE_BYTES = 64 << 20

# Input limits: every value a client sends is bounded before it reaches SQLite.
MAX_QUERY_CHARS = 200
MAX_TOKENS = 12
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_OFFSET = 400  # deeper paging is for bulk use: download the published DB instead
MAX_TORRENT_LIMIT = 1000
MAX_TORRENT_OFFSET = 10_000_000
MAX_ID = 2**63 - 1
MAX_ISRC_MATCHES = 100
# Text queries rank every match, cheaply: the published track_fts is numbered in
# popularity order (its rowid is search_order.pos, 1 = most listened), and FTS5 yields
# matches in rowid order, so a page of the N best matches reads only the first N.

# A last word of 4+ letters that is itself this common is taken as typed, not as a
# prefix: FTS5 expands a prefix longer than its prefix indexes (2 and 3 characters) by
# merging the postings of every longer word in memory, which costs tens of ms for a
# common word in a large archive ("love*" = love, lovely, lover, ...).
EXACT_PROBE = 100
_TOKEN = re.compile(r"\w+")

Row = dict[str, Any]


class BadQuery(InputError):
    """A search parameter is out of range or malformed (HTTP 400)."""

    def __init__(self, subject: object, problem: str, code: str = "bad_request") -> None:
        super().__init__(subject, problem)
        self.code = code


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results."""

    query: str
    kind: str  # "text", "isrc", "isrc_prefix" or "empty"
    limit: int
    offset: int
    results: list[Row]
    next_offset: int | None

    def as_dict(self) -> Row:
        return {
            "query": self.query,
            "kind": self.kind,
            "limit": self.limit,
            "offset": self.offset,
            "count": len(self.results),
            "next_offset": self.next_offset,
            "results": self.results,
        }


def fts_query(text: str) -> str:
    """Turn free user text into a safe FTS5 query: quoted tokens, ANDed, last one a prefix.

    Tokens are runs of word characters (after NFC normalisation, so decomposed
    accents join their letter); quoting them means no user character is ever read
    as FTS5 syntax. Only the last token is prefix-matched (``*``), as in a search
    box where the user may still be typing it: prefix-matching every word would
    merge the postings of every longer word (``love*`` is also "lovely", "lover")
    and cost several times more on a large archive. A one-character last token
    stays exact so that ``a`` does not expand to every word starting with "a".

    The published index holds the text as the catalogue has it (FTS5's unicode61 folds
    case and diacritics, not compatibility forms), so a query whose NFKC form differs
    (full-width ``ＬＯＶＥ``, ligatures ``ﬁ``, ``ǅ``, mathematical letters, half-width
    kana) asks for both forms: ``("ＬＯＶＥ"*) OR ("LOVE"*)``. The text as typed finds a
    title stored that way, and its plain form finds the plain title. (NFKC alone missed
    every title holding such characters, even searched for exactly as it is.)
    Returns "" if there is nothing to search for.
    """
    forms: list[str] = []
    for form in ("NFC", "NFKC"):
        tokens = _TOKEN.findall(unicodedata.normalize(form, text))[:MAX_TOKENS]
        if not tokens:
            continue
        quoted = [f'"{t}"' for t in tokens]
        if len(tokens[-1]) >= 2:
            quoted[-1] += "*"
        query = " ".join(quoted)
        if query not in forms:
            forms.append(query)
    if len(forms) <= 1:
        return forms[0] if forms else ""
    return " OR ".join(f"({q})" for q in forms)


def check_limit(limit: int, maximum: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= maximum:
        raise BadQuery("limit", f"must be between 1 and {maximum}, got {limit}", "bad_limit")
    return limit


def check_offset(offset: int, maximum: int = MAX_OFFSET) -> int:
    if not 0 <= offset <= maximum:
        raise BadQuery("offset", f"must be between 0 and {maximum}, got {offset}", "bad_offset")
    return offset


def check_query(q: str) -> str:
    if len(q) > MAX_QUERY_CHARS:
        raise BadQuery("q", f"too long ({len(q)} characters, at most {MAX_QUERY_CHARS})", "q_too_long")
    return q.strip()


def looks_like_isrc(q: str) -> isrc_mod.ISRC | None:
    """The ISRC if the whole query is one (spaces/hyphens allowed), else None."""
    if not 12 <= len(q) <= 20:
        return None
    try:
        return isrc_mod.parse(q)
    except InputError:
        return None


class PublishedDB:
    """The published metadata database, opened read-only, one connection per thread."""

    def __init__(self, path: Path, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise WorkspaceError(self.path, "no published metadata (run `phono publish` first)")
        self._uri = file_uri(self.path.resolve(), mode="ro", immutable=1)
        self._local = threading.local()
        info = self._read_info()
        version = info.get("schema_version", str(PUBLISH_SCHEMA_VERSION))
        if version not in {str(v) for v in READABLE_SCHEMA_VERSIONS}:
            readable = ", ".join(str(v) for v in sorted(READABLE_SCHEMA_VERSIONS))
            raise WorkspaceError(
                self.path, f"published schema version {version}, this phono reads {readable}"
            )
        self.info = info
        # The file never changes while served, so caching answers is always correct.
        # One budget in bytes for every kind of answer (see serve/cache.py).
        self.cache: ByteLRU[Any] = ByteLRU(cache_bytes)
        self._coverage: list[tuple[int, float]] | None = None

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self._uri, uri=True, cached_statements=64)
            except sqlite3.Error as exc:
                raise WorkspaceError(self.path, f"cannot open: {exc}") from exc
            conn.execute("PRAGMA query_only = 1")
            # small private cache per thread; the mmap'd file shares the OS page cache
            conn.execute("PRAGMA cache_size = -16384")
            conn.execute("PRAGMA mmap_size = 1073741824")
            self._local.conn = conn
        return conn

    def _read_info(self) -> dict[str, str]:
        try:
            return dict(self._conn().execute("SELECT key, value FROM info"))
        except sqlite3.Error as exc:
            raise WorkspaceError(self.path, f"not a published metadata database ({exc})") from exc

    # -- search ------------------------------------------------------------------------
    def search(self, q: str, limit: int = DEFAULT_LIMIT, offset: int = 0) -> SearchPage:
        """Search titles, artists, releases and ISRCs: an ISRC query is an exact look-up,
        the start of one (6-11 characters) a range of track_isrc's index."""
        return self.cache.get(("search", q, limit, offset), lambda: self._search(q, limit, offset))

    def _search(self, q: str, limit: int = DEFAULT_LIMIT, offset: int = 0) -> SearchPage:
        q = check_query(q)
        check_limit(limit)
        check_offset(offset)
        code = looks_like_isrc(q)
        if code is not None:
            # every track carrying it, page by page as for a prefix (by_isrc's first
            # MAX_ISRC_MATCHES ended the pages there: the others were never listed)
            ids = self._isrc_ids(code.code, offset + limit + 1)
            more = len(ids) > offset + limit and offset + limit <= MAX_OFFSET
            page = self._hydrate(ids[offset : offset + limit])
            return SearchPage(q, "isrc", limit, offset, page, offset + limit if more else None)
        start = isrc_mod.prefix(q) if len(q) <= 20 else None
        if start is not None:
            ids = self._isrc_prefix_ids(start, offset + limit + 1)
            if ids:  # else it may be a word after all: a text search
                more = len(ids) > offset + limit and offset + limit <= MAX_OFFSET
                rows = self._hydrate(ids[offset : offset + limit])
                return SearchPage(q, "isrc_prefix", limit, offset, rows,
                                  offset + limit if more else None)
        match = fts_query(q)
        if not match:
            return SearchPage(q, "empty", limit, offset, [], None)
        conn = self._conn()
        last = match.rsplit(" ", 1)[-1]
        if last.endswith("*") and len(last) >= 4 + 3:  # '"' + 4 letters + '"*'
            (n,) = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM track_fts WHERE track_fts MATCH ? LIMIT ?)",
                (last[:-1], EXACT_PROBE),
            ).fetchone()
            if n >= EXACT_PROBE:
                match = match[:-1]
        # Ranking: tracks whose title holds every word of the query first, then the rest
        # (the words are in the artists, release or ISRC); most listened first within
        # each. Both are FTS5 queries read in rowid (= popularity) order and stopped after
        # the rows this page needs (one more tells whether there is a next page): no sort,
        # no corpus statistics (bm25's IDF walks every posting of every word), no window.
        want = offset + limit + 1
        in_title = f"title : ({match})"
        pos = self._first_matches(conn, in_title, want)
        if len(pos) < want:
            pos += self._first_matches(conn, f"({match}) NOT {in_title}", want - len(pos))
        ids = self._track_ids(conn, pos[offset:])
        more = len(ids) > limit and offset + limit <= MAX_OFFSET  # no link to a page refused
        rows = self._hydrate(ids[:limit])
        return SearchPage(q, "text", limit, offset, rows, offset + limit if more else None)

    @staticmethod
    def _first_matches(conn: sqlite3.Connection, match: str, n: int) -> list[int]:
        """The first ``n`` search positions (most listened first) matching ``match``."""
        return [r[0] for r in conn.execute(
            "SELECT rowid FROM track_fts WHERE track_fts MATCH ? LIMIT ?", (match, n))]

    @staticmethod
    def _track_ids(conn: sqlite3.Connection, positions: list[int]) -> list[int]:
        """Track ids of search positions, in the same order."""
        if not positions:
            return []
        found = dict(conn.execute(
            f"SELECT pos, track_id FROM search_order WHERE pos IN ({','.join('?' * len(positions))})",
            positions))
        return [found[p] for p in positions if p in found]

    def by_isrc(self, code: str) -> list[Row]:
        """Tracks carrying this (normalised) ISRC."""
        return self.cache.get(("isrc", code), lambda: self._by_isrc(code))

    def _isrc_prefix_ids(self, start: str, n: int) -> list[int]:
        """The first ``n`` distinct tracks with an ISRC starting with ``start``, in code
        order: a range of track_isrc's index, read only as far as needed. Every track, not
        only those track_fts indexes (schema 3 has no ISRC column there)."""
        ids: dict[int, None] = {}
        rows = self._conn().execute(
            "SELECT track_id FROM track_isrc WHERE isrc >= ? AND isrc < ? ORDER BY isrc",
            (start, start + "\x7f"),  # every code character sorts below DEL
        )
        for (track_id,) in rows:
            ids.setdefault(track_id)
            if len(ids) >= n:
                break
        return list(ids)

    def _isrc_ids(self, code: str, n: int) -> list[int]:
        """The first ``n`` tracks carrying the (normalised) ISRC ``code``, by track id."""
        return [r[0] for r in self._conn().execute(
            "SELECT track_id FROM track_isrc WHERE isrc = ? ORDER BY track_id LIMIT ?", (code, n))]

    def _by_isrc(self, code: str) -> list[Row]:
        return self._hydrate(self._isrc_ids(code, MAX_ISRC_MATCHES))

    def isrc_total(self, code: str) -> int:
        """How many tracks carry the (normalised) ISRC ``code`` (by_isrc lists the first
        :data:`MAX_ISRC_MATCHES`)."""
        return self.cache.get(("isrc_total", code), lambda: int(self._conn().execute(
            "SELECT count(*) FROM track_isrc WHERE isrc = ?", (code,)).fetchone()[0]))

    def track(self, track_id: int) -> Row | None:
        """One track with its artists, ISRCs and files, or None."""
        return self.cache.get(("track", track_id), lambda: self._track(track_id))

    def _track(self, track_id: int) -> Row | None:
        if not 0 <= track_id <= MAX_ID:
            return None
        rows = self._hydrate([track_id])
        return rows[0] if rows else None

    def _hydrate(self, ids: list[int]) -> list[Row]:
        """Full records for ``ids``, in that order: four indexed queries, not one per track."""
        if not ids:
            return []
        conn = self._conn()
        key = orjson.dumps(ids).decode()
        tracks: dict[int, Row] = {}
        for r in conn.execute(
            "SELECT t.id, t.mbid, t.title, t.artist_credit, t.disc, t.position, t.duration_ms,"
            " t.source, t.licence, t.listens, t.rank, t.band, t.tier, t.status,"
            " r.id, r.mbid, r.title, r.date, r.label, r.artist_credit"
            " FROM track t LEFT JOIN release r ON r.id = t.release_id"
            " WHERE t.id IN (SELECT value FROM json_each(?))",
            (key,),
        ):
            tracks[r[0]] = {
                "id": r[0],
                "mbid": r[1],
                "title": r[2],
                "artist_credit": r[3],
                "disc": r[4],
                "position": r[5],
                "duration_ms": r[6],
                "source": r[7],
                "licence": r[8],
                "listens": r[9],
                "rank": r[10],
                "band": r[11],
                "tier": r[12],
                "status": r[13],
                # taken down: the metadata stays, no file, path or magnet is handed out
                "withdrawn": r[13] == "excluded",
                "release": None
                if r[14] is None
                else {
                    "id": r[14],
                    "mbid": r[15],
                    "title": r[16],
                    "date": r[17],
                    "label": r[18],
                    "artist_credit": r[19],
                },
                "artists": [],
                "isrcs": [],
                "files": [],
            }
        for tid, aid, name, mbid in conn.execute(
            "SELECT ta.track_id, a.id, a.name, a.mbid FROM track_artist ta"
            " JOIN artist a ON a.id = ta.artist_id"
            " WHERE ta.track_id IN (SELECT value FROM json_each(?))"
            " ORDER BY ta.track_id, ta.position",
            (key,),
        ):
            tracks[tid]["artists"].append({"id": aid, "name": name, "mbid": mbid})
        for tid, code in conn.execute(
            "SELECT track_id, isrc FROM track_isrc"
            " WHERE track_id IN (SELECT value FROM json_each(?)) ORDER BY track_id, isrc",
            (key,),
        ):
            tracks[tid]["isrcs"].append(code)
        for f in conn.execute(
            "SELECT f.track_id, f.path, f.size, f.sha256, f.btv2_root, f.tier, f.container,"
            " f.codec, f.bitrate, f.original_sha256, f.original_size, f.patch_path,"
            " o.id, o.name, o.kind, o.band, o.wave, o.magnet, o.obsolete,"
            " o.infohash_v1, o.infohash_v2"
            " FROM file f JOIN torrent o ON o.id = f.torrent_id"
            " WHERE f.track_id IN (SELECT value FROM json_each(?))"
            " ORDER BY f.track_id, o.obsolete, o.wave DESC, o.id",
            (key,),
        ):
            if tracks[f[0]]["withdrawn"]:  # a database published before the takedown
                continue
            tracks[f[0]]["files"].append(
                {
                    "path": f[1],
                    "size": f[2],
                    "sha256": f[3],
                    "btv2_root": f[4],
                    "tier": f[5],
                    "container": f[6],
                    "codec": f[7],
                    "bitrate": f[8],
                    "original_sha256": f[9],
                    "original_size": f[10],
                    "patch_path": f[11],
                    "torrent": {
                        "id": f[12],
                        "name": f[13],
                        "kind": f[14],
                        "band": f[15],
                        "wave": f[16],
                        "magnet": f[17] or None,  # '' = withdrawn torrent
                        "obsolete": bool(f[18]),
                        "infohash_v1": f[19],
                        "infohash_v2": f[20],
                    },
                }
            )
        return [tracks[i] for i in ids if i in tracks]

    # -- torrents, stats, coverage -----------------------------------------------------
    def torrents(self, limit: int = MAX_TORRENT_LIMIT, offset: int = 0) -> list[Row]:
        """Published torrents: current first, by kind, wave and band."""
        check_limit(limit, MAX_TORRENT_LIMIT)
        check_offset(offset, MAX_TORRENT_OFFSET)
        cols = (
            "id", "kind", "name", "band", "wave", "infohash_v1", "infohash_v2", "magnet",
            "size", "files", "obsolete", "added_at",
        )  # fmt: skip
        rows = self._conn().execute(
            f"SELECT {', '.join(cols)} FROM torrent ORDER BY obsolete, kind, wave, band, name"
            " LIMIT ? OFFSET ?",
            (limit, offset),
        )
        out = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            d["obsolete"] = bool(d["obsolete"])
            d["withdrawn"] = not d["magnet"]  # publish blanks a taken-down torrent's magnet
            d["magnet"] = d["magnet"] or None
            out.append(d)
        return out

    def torrent_count(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM torrent").fetchone()[0])

    def stats(self) -> Row:
        """The ``stats`` table as a dict; JSON-looking text values are decoded."""
        out: Row = {}
        for key, value in self._conn().execute("SELECT key, value FROM stats ORDER BY key"):
            if isinstance(value, str) and value[:1] in ("{", "["):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass
            out[key] = value
        return out

    def coverage(self, points: int = 120) -> list[tuple[int, float]]:
        """(rank, cumulative share of listens) samples, computed once in one table scan."""
        if self._coverage is None:
            conn = self._conn()
            n, total = conn.execute(
                "SELECT count(*), total(listens) FROM track WHERE rank IS NOT NULL"
            ).fetchone()
            curve: list[tuple[int, float]] = [(0, 0.0)]
            if n and total:
                step = max(1, -(-n // points))
                acc = 0
                for bucket, s in conn.execute(
                    "SELECT (rank - 1) / ?, total(listens) FROM track WHERE rank IS NOT NULL"
                    " GROUP BY 1 ORDER BY 1",
                    (step,),
                ):
                    acc += s or 0
                    curve.append((min(n, (bucket + 1) * step), acc / total))
            self._coverage = curve
        return self._coverage

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
