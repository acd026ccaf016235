"""The torrent owner's functions on a real catalogue file."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonotheque.catalogue import torrents
from phonotheque.catalogue.store import Store


def _data(name: str, band: int = 1) -> torrents.NewTorrent:
    return torrents.NewTorrent(
        kind="data", role="audio", band=band, name=name, torrent_path=f"torrents/{name}.torrent",
        data_path=f"torrents/{name}", size=3, files=1, created_at="2026-01-01T00:00:00+00:00",
        aac_from="20260101T000000Z", aac_to="20260101T000000Z")


BUILT = torrents.Built(infohash_v1="aa" * 20, infohash_v2="bb" * 32, piece_length=16384,
                       size=3, files=1, magnet="magnet:?xt=urn:btih:" + "aa" * 20)


def _row(store: Store, tid: int) -> dict[str, object]:
    return dict(store.query("SELECT * FROM torrent WHERE id = ?", (tid,))[0])


def test_plan_build_replace_and_release(tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite", create=True) as store:
        old = torrents.add_torrent(store, _data("old"), [
            torrents.Member("x.flac", 3, audio_file_id=7, sha256="cc" * 32, aacid="x")])
        assert _row(store, old)["built"] == 0  # a plan until hashed
        torrents.set_member_roots(store, old, "x.flac", "dd" * 32)
        torrents.mark_built(store, old, BUILT)
        row = _row(store, old)
        assert (row["built"], row["infohash_v1"], row["magnet"]) == (1, "aa" * 20, BUILT.magnet)
        meta = torrents.add_torrent(
            store, torrents.NewTorrent(kind="meta", role="aac_meta", name="old.meta",
                                       torrent_path="t", data_path="d", size=0, files=1,
                                       created_at="2026-01-01T00:00:00+00:00", describes=old),
            built=BUILT)
        assert torrents.unreleased_totals(store) == (1, 3)

        new = torrents.add_torrent(store, _data("new"))
        torrents.mark_obsolete(store, old, new)  # what describes it goes too
        assert {_row(store, t)["superseded_by"] for t in (old, meta)} == {new}
        assert torrents.unreleased_totals(store) == (0, 0)  # the rebuild is not built yet
        torrents.drop_planned(store, new)  # the rebuild came to nothing
        assert _row(store, old)["superseded_by"] is None
        assert not store.query("SELECT 1 FROM torrent WHERE id = ?", (new,))

        other = torrents.add_torrent(store, _data("other", band=2), built=BUILT)
        assert [r["name"] for r in torrents.unreleased(store)] == ["other"]
        assert torrents.add_wave(store, "2026-01-02T00:00:00+00:00", [other], 1, 3, "{}") == 1
        assert torrents.add_wave(store, "2026-01-03T00:00:00+00:00", [], 0, 0, "{}") == 2
        assert torrents.last_wave_time(store) == "2026-01-03T00:00:00+00:00"
        assert _row(store, other)["wave"] == 1
        assert torrents.name_taken(store, "other") and not torrents.name_taken(store, "nope")


def test_a_failed_stage_leaves_no_half_torrent(tmp_path: Path) -> None:
    with Store(tmp_path / "c.sqlite", create=True) as store:
        with pytest.raises(RuntimeError), store.transaction():
            torrents.add_torrent(store, _data("a"), [torrents.Member("x", 1)])
            raise RuntimeError("hashing failed")
        assert store.scalar("SELECT count(*) FROM torrent") == 0
        assert store.scalar("SELECT count(*) FROM torrent_file") == 0
