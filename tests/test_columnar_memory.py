"""Columnar stages bound DuckDB's memory: a default far below half the machine (or
$PHONO_MEMORY), and a small limit spills to <ws>/tmp/duckdb yet gives the same tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque import columnar_ingest
from phonotheque.catalogue import bulk, columnar
from phonotheque.ingest import ingest
from phonotheque.synth import SynthOptions, synth
from phonotheque.workspace import Workspace
from tests.test_columnar_ingest import columnar_tables, sqlite_tables


def _limits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the memory_limit of every connection the ingest opens (the real open)."""
    seen: list[str] = []
    real = bulk.open_bulk

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        con = real(*args, **kwargs)
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return con

    monkeypatch.setattr(bulk, "open_bulk", spy)
    return seen


def _gib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1, "TiB": 2**10}[unit]


def test_ingest_default_memory_limit_is_bounded(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    synth(tmp_path / "s", SynthOptions(tracks=200, seed=3))
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    seen = _limits(monkeypatch)
    columnar_ingest.ingest(ws, "musicbrainz", [tmp_path / "s" / "release.jsonl"])
    want = min(columnar.memory_limit(), bulk.STAGE_MEMORY) / 2**30
    assert seen and all(abs(_gib(s) - want) < 0.05 for s in seen), (seen, want)


def test_select_and_publish_are_bounded_too_and_phono_memory_sets_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # select once used DuckDB's default (half the machine): 5.3 GiB RSS at 10 M tracks
    from phonotheque.publish.publisher import publish
    from phonotheque.select import SelectOptions, select

    synth(tmp_path / "s", SynthOptions(tracks=300, seed=4))
    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    columnar_ingest.ingest(ws, "musicbrainz", [tmp_path / "s" / "release.jsonl"])
    seen = _limits(monkeypatch)
    select(ws, SelectOptions())
    publish(ws)
    want = min(columnar.memory_limit(), bulk.STAGE_MEMORY) / 2**30
    assert seen and all(abs(_gib(s) - want) < 0.05 for s in seen), (seen, want)
    seen.clear()
    monkeypatch.setenv(bulk.MEMORY_ENV, "700MiB")
    select(ws, SelectOptions())
    assert seen and all(abs(_gib(s) - 700 / 1024) < 0.01 for s in seen), seen


def test_a_bad_phono_memory_is_a_clear_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from phonotheque.errors import InputError

    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    for bad, why in (("lots", "not a size"), ("1MiB", "below the minimum")):
        monkeypatch.setenv(bulk.MEMORY_ENV, bad)
        with pytest.raises(InputError, match=why) as err:
            bulk.open_bulk(ws.root)
        assert "$PHONO_MEMORY" in str(err.value)


def test_a_phono_memory_too_large_for_duckdb_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A size DuckDB cannot hold (2**64 bytes and up wrap to nothing there) was passed on:
    DuckDB then failed to open the catalogue with "Out of Memory Error: failed to pin
    block", blaming catalogue.duckdb, not $PHONO_MEMORY."""
    from phonotheque.errors import InputError

    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    for bad in ("20000PB", "18446744073709551616", "99999999999999999999999TB"):
        monkeypatch.setenv(bulk.MEMORY_ENV, bad)
        with pytest.raises(InputError, match="above the maximum") as err:
            bulk.open_bulk(ws.root)
        assert "$PHONO_MEMORY" in str(err.value)
    monkeypatch.setenv(bulk.MEMORY_ENV, "100PB")  # more than any machine, still taken
    bulk.open_bulk(ws.root).close()


def test_a_bad_phono_memory_creates_no_sqlite_workspace_in_place_of_a_columnar_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`phono init --engine duckdb NEW` with a bad $PHONO_MEMORY exited 2 but left NEW as
    a SQLite workspace (catalogue.sqlite, no catalogue.duckdb): the next `phono ingest`
    there ran on the engine the user did not ask for, without a word."""
    from phonotheque.errors import InputError

    monkeypatch.setenv(bulk.MEMORY_ENV, "lots")
    with pytest.raises(InputError, match=r"\$PHONO_MEMORY"):
        Workspace.create(tmp_path / "ws", engine="duckdb")
    assert not (tmp_path / "ws" / "catalogue.sqlite").exists()
    monkeypatch.delenv(bulk.MEMORY_ENV)
    assert Workspace.create(tmp_path / "ws", engine="duckdb").engine == "duckdb"


def test_small_memory_limit_gives_the_same_tables(tmp_path: Path) -> None:
    synth(tmp_path / "s", SynthOptions(tracks=3000, seed=5))
    paths = [tmp_path / "s" / "release.jsonl"]
    row = Workspace.create(tmp_path / "sqlite")
    col = Workspace.create(tmp_path / "columnar", engine="duckdb")
    ingest(row, "musicbrainz", paths)
    columnar_ingest.ingest(col, "musicbrainz", paths, memory_bytes=64 << 20)
    assert columnar_tables(col) == sqlite_tables(row)


def test_phono_memory_says_what_is_wrong_with_a_size(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """PHONO_MEMORY=100EiB said "not a size" (EiB, the unit of the documented maximum, was
    unknown), a negative size said the same, and a number of 5,000 digits ended in a
    ValueError traceback (its message tried to print it). Each now says what is wrong."""
    from phonotheque.errors import InputError

    ws = Workspace.create(tmp_path / "ws", engine="duckdb")
    huge = "9" * 5000
    for bad, why in (("100EiB", "above the maximum of 1 EiB"),
                     ("2EB", "above the maximum of 1 EiB"),
                     (huge, "above the maximum of 1 EiB"),
                     (huge + "GiB", "above the maximum of 1 EiB"),
                     ("-1GiB", "cannot be negative"),
                     ("0", "0 B is below the minimum of 64 MiB"),
                     ("64MB", "61 MiB is below the minimum of 64 MiB")):
        monkeypatch.setenv(bulk.MEMORY_ENV, bad)
        with pytest.raises(InputError, match=why) as err:
            bulk.open_bulk(ws.root)
        assert "$PHONO_MEMORY" in str(err.value)
    monkeypatch.setenv(bulk.MEMORY_ENV, "1EiB")  # the maximum itself can be written
    bulk.open_bulk(ws.root).close()


def test_a_budget_of_thousands_of_digits_is_a_clear_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from phonotheque.cli import main

    Workspace.create(tmp_path / "ws", engine="duckdb")
    res = CliRunner().invoke(main, ["select", "-w", str(tmp_path / "ws"),
                                    "--budget", "9" * 5000 + "PB"])
    assert res.exit_code == 2 and "above the maximum of 8 EiB" in res.output, res.output
