"""The audio stage's ledger writes go through the ledger owner, which checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque.catalogue import ledger
from phonotheque.catalogue.store import Store
from phonotheque.errors import InputError


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "c.sqlite", create=True)
    with store.transaction() as conn:
        for tid in (1, 2, 3):
            conn.execute("INSERT INTO track(id, key, title) VALUES (?, ?, 'x')", (tid, f"k{tid}"))
            conn.execute(
                "INSERT INTO selection(track_id, rank, band, cum_share, tier) "
                "VALUES (?, ?, 1, 1.0, 'original')", (tid, tid))
        conn.execute("UPDATE track SET excluded = 1 WHERE id = 3")
    return store


def test_sync_selection_gives_rows_and_marks_excluded(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        ledger.sync_selection(store)
        got = dict(store.query("SELECT track_id, status FROM ledger ORDER BY track_id"))
        assert got == {1: "todo", 2: "todo", 3: "excluded"}


def test_audio_outcomes_are_checked_and_only_changes_are_stamped(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        ledger.sync_selection(store)
        assert ledger.record_outcomes(store, [
            (1, "success", "original"), (2, "skipped_duplicate", "same bytes as track 1")]) == 2
        with pytest.raises(InputError):
            ledger.record_outcomes(store, [(1, "skipped_low_priority", None)])
        with pytest.raises(InputError):
            ledger.record_outcomes(store, [(1, "error_", None)])
        # the same outcome again changes nothing (updated_at included)
        assert ledger.record_outcomes(store, [(1, "success", "original")]) == 0
        assert ledger.record_outcomes(store, [(1, "error_decode", "bad frame")]) == 1
