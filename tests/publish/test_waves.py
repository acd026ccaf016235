"""Release waves: most popular bands first; exclusions rebuild folders and obsolete torrents."""

from __future__ import annotations

from pathlib import Path

import orjson

from phonotheque.model import Exclusion
from phonotheque.pack.packer import PackOptions
from phonotheque.progress import ProgressEvent
from phonotheque.publish.waves import ReleaseOptions, release
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive


def _index(ws: Workspace) -> list[dict[str, object]]:
    return orjson.loads((ws.publish / "torrents.json").read_bytes())


def test_waves_by_band_then_exclusion(ws: Workspace, data: Path) -> None:
    make_archive(ws, data)
    opts = PackOptions(max_files=3)
    r1 = release(ws, ReleaseOptions(wave_bands=1, pack_options=opts))
    assert r1.wave == 1 and r1.bands == [1] and len(r1.released) == 2
    idx = _index(ws)
    data_entries = [e for e in idx if e["kind"] == "data"]
    assert {e["band"] for e in data_entries} == {1} and all(e["wave"] == 1 for e in data_entries)
    meta = [e for e in idx if e["role"] == "aac_meta"]
    assert len(meta) == 2 and all(e["wave"] == 1 and e["is_metadata"] for e in meta)
    assert [e["role"] for e in idx if e["role"] == "database"] == ["database"]
    for e in idx:
        assert e["magnet_link"].startswith("magnet:?xt=urn:btih:")
        assert (ws.publish / str(e["torrent"])).is_file()
        assert e["added_to_torrents_list_at"] and e["data_size"] > 0 and e["num_files"] >= 1
    assert r1.remaining == 3

    r2 = release(ws, ReleaseOptions(wave_bytes=1))  # byte cap: one folder, at least
    assert r2.wave == 2 and len(r2.released) == 1 and r2.bands == [2]
    # the re-publish made a new database torrent; the one it replaced is not listed
    # (before issue 12 every re-publish added another obsolete one to torrents.json)
    with ws.store(readonly=True) as store:
        assert store.scalar("SELECT count(*) FROM torrent WHERE role = 'database'") >= 2
    assert [e["obsolete"] for e in _index(ws) if e["role"] == "database"] == [False]

    # An exclusion after the waves: the next wave rebuilds the folder and obsoletes the old.
    with ws.store() as store:
        isrc = store.scalar("SELECT isrc FROM track_isrc ti JOIN selection s "
                            "ON s.track_id = ti.track_id WHERE s.rank = 2")
        store.add_exclusion(Exclusion("isrc", isrc, "takedown"))
    r3 = release(ws, ReleaseOptions(wave_bands=1))
    assert r3.wave == 3 and r3.bands == [1] and len(r3.released) == 1
    assert r3.pack is not None and len(r3.pack.rebuilt) == 1
    old, new = r3.pack.rebuilt[0]
    assert r3.obsoleted == [old] and r3.released == [new]
    idx = _index(ws)
    by_name = {e["display_name"]: e for e in idx}
    assert by_name[old]["obsolete"] is True and by_name[old]["superseded_by"] == new
    assert by_name[old]["wave"] == 1 and by_name[new]["wave"] == 3
    old_meta = [e for e in idx if e["role"] == "aac_meta" and e["obsolete"]]
    assert len(old_meta) == 1
    magnets = (ws.publish / "magnets.txt").read_text().splitlines()
    assert by_name[old]["magnet_link"] not in magnets and by_name[new]["magnet_link"] in magnets
    # obsolete entries come after the current ones
    flags = [e["obsolete"] for e in idx]
    assert flags == sorted(flags)
    # the excluded track is nowhere in the published files
    import sqlite3
    db = sqlite3.connect(ws.publish / "metadata.sqlite")
    status = db.execute("SELECT t.status FROM track t JOIN track_isrc i ON i.track_id = t.id "
                        "WHERE i.isrc = ?", (isrc,)).fetchone()[0]
    assert status == "excluded"
    files = db.execute("SELECT o.obsolete FROM file f JOIN track_isrc i ON i.track_id = f.track_id "
                       "JOIN torrent o ON o.id = f.torrent_id WHERE i.isrc = ?", (isrc,)).fetchall()
    assert files == []  # not even in the obsolete torrent, which is withdrawn
    assert by_name[old]["withdrawn"] is True and by_name[old]["magnet_link"] is None
    ex = db.execute("SELECT kind, value, reason FROM exclusion").fetchall()
    assert ex == [("isrc", isrc, "takedown")]

    r4 = release(ws)
    assert r4.wave == 4 and r4.remaining == 0
    r5 = release(ws)
    assert r5.wave is None and r5.released == []


def test_interrupted_release_finishes_its_wave(tmp_path: Path, data: Path) -> None:
    import pytest

    from tests.publish.helpers import output_hashes

    ref = Workspace.create(tmp_path / "ref")
    make_archive(ref, data)
    release(ref, ReleaseOptions(wave_bands=1, pack_options=PackOptions(max_files=3)))

    ws = Workspace.create(tmp_path / "ws")
    make_archive(ws, data)
    calls = 0

    def crash(event: ProgressEvent) -> None:
        nonlocal calls
        if event.stage == "publish" and event.message == "parquet":  # the wave is recorded
            calls += 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        release(ws, ReleaseOptions(wave_bands=1, pack_options=PackOptions(max_files=3)),
                progress=crash)
    assert calls == 1
    again = release(ws, ReleaseOptions(wave_bands=1))
    assert again.resumed and again.wave == 1 and again.released == []
    assert output_hashes(ws.root) == output_hashes(ref.root)
    nxt = release(ws, ReleaseOptions(wave_bands=1))
    assert nxt.wave == 2 and not nxt.resumed
