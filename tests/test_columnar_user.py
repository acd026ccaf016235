"""A curator's columnar run through the real `phono`, checked against the SQLite engine.

`phono init --engine duckdb`, then the demo's MusicBrainz and listens data, select,
ledger, stats, compare and publish. Each command runs on a columnar workspace and on a SQLite
one fed the same inputs: where the command runs on a columnar workspace
(`COLUMNAR_COMMANDS`) its exit status and figures must be the SQLite engine's; where it
does not yet, it must refuse (exit 2, one line, no traceback).
"""

from __future__ import annotations

import sqlite3
import subprocess
from importlib import resources
from pathlib import Path

import orjson

from phonotheque.workspace import COLUMNAR_COMMANDS, Workspace

REPO = Path(__file__).resolve().parents[1]
PHONO = str(REPO / ".venv" / "bin" / "phono")
DEMO = Path(str(resources.files("phonotheque") / "demo_data"))

#: The curator's steps after init: (command name, its arguments before -w).
STEPS: list[tuple[str, list[str]]] = [
    ("ingest musicbrainz", ["ingest", "musicbrainz", str(DEMO / "musicbrainz")]),
    ("ingest listens", ["ingest", "listens", str(DEMO / "listens.csv"),
                        str(DEMO / "listenbrainz-top-recordings.json")]),
    ("select", ["select", "--json"]),
    ("ledger", ["ledger", "--json", "--limit", "0"]),
    ("stats", ["stats", "--json"]),
    ("publish", ["publish", "--no-database-torrent"]),
]

#: The stats figures that do not depend on listens.
TRACK_FIGURES = ("tracks", "releases", "artists", "isrcs", "unique_isrcs", "shared_isrcs",
                 "tracks_sharing_isrc", "tracks_without_isrc", "unknown_country_isrcs",
                 "excluded_tracks")


def _phono(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([PHONO, *args], capture_output=True, text=True, cwd=REPO)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _published_tracks(ws: Path) -> int:
    with sqlite3.connect(ws / "publish" / "metadata.sqlite") as conn:
        return int(conn.execute("SELECT count(*) FROM track").fetchone()[0])


def test_a_columnar_workspace_through_the_cli(tmp_path: Path) -> None:
    col, ref = tmp_path / "columnar", tmp_path / "sqlite"
    made = _phono("init", str(col), "--engine", "duckdb")
    assert made.returncode == 0 and "engine: duckdb" in made.stdout
    assert _phono("init", str(ref)).returncode == 0
    assert Workspace(col).engine == "duckdb" and Workspace(ref).engine == "sqlite"

    ran: set[str] = set()  # the steps that ran on the columnar workspace
    for name, args in STEPS:
        ingested = {"ingest musicbrainz", "ingest listens"} <= ran
        want = _phono(*args, "-w", str(ref))
        got = _phono(*args, "-w", str(col))
        if name not in COLUMNAR_COMMANDS:
            assert got.returncode == 2, (name, got.stdout, got.stderr)
            assert f"phono {name}: not available on a columnar workspace" in got.stderr
            assert got.stderr.count("\n") == 1
            continue
        ran.add(name)
        assert got.returncode == want.returncode, (name, got.stdout, got.stderr)
        if name == "stats":
            stats = orjson.loads(got.stdout)
            if ingested:
                assert stats == orjson.loads(want.stdout)
                assert stats["tracks"] > 0 and stats["listens"]["unmatched"] > 0
            elif "ingest musicbrainz" in ran:  # no listens yet: the catalogue's figures
                oracle = orjson.loads(want.stdout)
                for key in TRACK_FIGURES:
                    assert stats[key] == oracle[key], key
                assert stats["tracks"] > 0
            else:  # an empty catalogue, counted on DuckDB
                assert stats["tracks"] == 0 and stats["listens"]["by_kind"] == []
        if name == "select" and ingested:
            summary, oracle = orjson.loads(got.stdout), orjson.loads(want.stdout)
            for key in oracle.keys() - {"elapsed_s"}:
                assert summary.get(key) == oracle[key], key
        if name == "ledger" and ingested:
            assert orjson.loads(got.stdout) == orjson.loads(want.stdout)
            assert orjson.loads(got.stdout)["counts"]
        if name == "publish" and ingested:
            assert _published_tracks(col) == _published_tracks(ref)

    compared = _phono("compare", "--json", str(col), str(ref))
    assert compared.returncode == 0, compared.stderr
    doc = orjson.loads(compared.stdout)
    for kind in ("isrc", "mbid"):
        part = doc[kind]
        if "ingest musicbrainz" in ran:  # the same inputs make the same keys on both engines
            assert part["only_a"] == part["only_b"] == 0 and part["both"] > 0, kind
        else:
            assert part["in_a"] == 0 and part["only_b"] == part["in_b"] > 0, kind
