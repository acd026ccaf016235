"""The audio stage end to end on real files: tiers, tags, hashes, patches, re-runs, bad input."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import mutagen
import pytest

from phonotheque.atomic import is_temporary
from phonotheque.audio import AudioOptions, rebuild, run_audio
from phonotheque.audio.stage import _audio_lock
from phonotheque.errors import BusyError, StorageError
from phonotheque.executors import InlineExecutor
from phonotheque.workspace import Workspace

from ..os_helpers import as_nobody, umount
from ..require import require_root, require_tmpfs, require_tool
from .conftest import Entry, add_tracks, tool_ok

PATH_RE = re.compile(r"audio/(original|reencode)/([0-9a-f]{2})/([0-9a-f]{64})\.[a-z0-9]+")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _rows(ws: Workspace, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    with ws.store(readonly=True) as store:
        return store.query(sql, params)


def _ledger(ws: Workspace) -> dict[int, str]:
    return {r[0]: r[1] for r in _rows(ws, "SELECT track_id, status FROM ledger")}


def test_tiers_tags_hashes_patches(ws: Workspace, data: Path, sounds: Path) -> None:
    entries = [
        Entry(data / "beets" / "full.flac", "original", isrcs=("GBAYE0601498",),
              mbid="b1a9c0e9-d987-4042-ae91-78d6a3267d69"),
        Entry(data / "beets" / "full.mp3", "original"),
        Entry(data / "beets" / "full.m4a", "original"),
        Entry(data / "beets" / "full.opus", "original"),
        Entry(data / "beets" / "full.wv", "original"),
        Entry(data / "beets" / "unparseable.flac", "original"),  # beets' unparseable *date* tag
        Entry(sounds / "complete.oga", "reencode", title="Complete"),
        Entry(sounds / "bell.oga", "reencode"),
        Entry(data / "beets" / "whitenoise.flac", "reencode"),
        Entry(data / "picard" / "test.flac", "original"),
    ]
    ids = add_tracks(ws, entries)
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    assert report.succeeded == len(entries) and report.error_count == 0
    assert set(_ledger(ws).values()) == {"success"}
    rows = {r["track_id"]: r for r in _rows(ws, "SELECT * FROM audio_file")}
    assert set(rows) == set(ids)
    for tid, e in zip(ids, entries, strict=True):
        r = rows[tid]
        m = PATH_RE.fullmatch(r["path"])
        assert m and m.group(1) == r["tier"] and m.group(3) == r["sha256"]
        final = ws.root / r["path"]
        assert final.stat().st_size == r["size"] and _sha(final) == r["sha256"]
        assert r["original_sha256"] == _sha(e.source)
        assert r["original_size"] == e.source.stat().st_size
        assert r["btv2_root"] is None and r["codec"] and r["duration_ms"] > 0
        parsed = mutagen.File(final)
        assert parsed is not None and parsed.tags is not None
        if r["tier"] == "original":
            out = ws.root / "rebuilt"
            rep = rebuild(final, ws.root / r["patch_path"], out, r["original_sha256"])
            assert rep.verified and out.read_bytes() == e.source.read_bytes()
            assert '"kind":"zstd-patch-from"' in r["reconstruction"]
        else:
            assert r["container"] == "ogg" and r["codec"] == "opus" and r["patch_path"] is None
            assert '"byte_exact":false' in r["reconstruction"]
            require_tool("oggz-validate")
            assert tool_ok("oggz-validate", str(final)).returncode == 0
            info = tool_ok("opusinfo", str(final))
            assert info.returncode == 0 and "Playback length" in info.stdout
            assert parsed.tags["TITLE"] == [e.title]
            if r["duration_ms"] > 1000:  # shorter than a gating block: no loudness
                assert "R128_TRACK_GAIN" in parsed.tags
        if final.suffix == ".flac":
            require_tool("flac")
            assert tool_ok("flac", "-t", "-s", str(final)).returncode == 0
    flac_tags = mutagen.File(ws.root / rows[ids[0]]["path"]).tags
    assert flac_tags["ISRC"] == ["GBAYE0601498"]
    assert flac_tags["MUSICBRAINZ_TRACKID"] == ["b1a9c0e9-d987-4042-ae91-78d6a3267d69"]
    assert flac_tags["ALBUM"] == ["An Album"] and flac_tags["DATE"] == ["2001-02-03"]
    assert flac_tags["LICENSE"] == ["CC-BY-SA-3.0"] and flac_tags["LABEL"] == ["A Label"]
    assert flac_tags["PHONOTHEQUE_METADATA_LICENSE"] == ["CC0-1.0"]
    # beets' "unparseable" date is replaced by the catalogue's
    assert mutagen.File(ws.root / rows[ids[5]]["path"]).tags["DATE"] == ["2001-02-03"]
    # a real (non-silent) sound gets ReplayGain from ebur128
    sound = rows[ids[6]]
    assert sound["replaygain_gain"] is not None and 0 < sound["replaygain_peak"] <= 1.0
    # the planned-reencode mp3 at 80 kbps... is planned original here; whitenoise re-encoded
    assert rows[ids[8]]["tier"] == "reencode"
    assert report.realtime_factor > 0 and report.bytes_in > 0


def test_rerun_skips_redoes_and_verifies(ws: Workspace, data: Path, sounds: Path) -> None:
    ids = add_tracks(ws, [Entry(sounds / "bell.oga"), Entry(data / "beets" / "full.flac",
                                                            "original")])
    first = run_audio(ws, AudioOptions(), InlineExecutor())
    assert first.succeeded == 2 and first.written == 2
    again = run_audio(ws, AudioOptions(), InlineExecutor())
    assert again.already_done == 2 and again.planned == 0
    rows = {r["track_id"]: r for r in _rows(ws, "SELECT * FROM audio_file")}
    # a deleted file is made again, identical
    gone = ws.root / rows[ids[0]]["path"]
    gone.unlink()
    third = run_audio(ws, AudioOptions(), InlineExecutor())
    assert third.planned == 1 and third.written == 1 and _sha(gone) == rows[ids[0]]["sha256"]
    # a same-size corrupted file passes the size check, not --verify
    kept = ws.root / rows[ids[1]]["path"]
    raw = bytearray(kept.read_bytes())
    raw[-1] ^= 0xFF
    kept.write_bytes(bytes(raw))
    assert run_audio(ws, AudioOptions(), InlineExecutor()).planned == 0
    fixed = run_audio(ws, AudioOptions(verify_existing=True), InlineExecutor())
    assert fixed.planned == 1
    # content-addressed: the corrupt file has the right name, so it must be rewritten
    assert _sha(kept) == rows[ids[1]]["sha256"]


def test_identical_sources_stored_once(ws: Workspace, data: Path, tmp_path: Path) -> None:
    a = tmp_path / "a.flac"
    b = tmp_path / "copy-of-a.flac"
    a.write_bytes((data / "beets" / "full.flac").read_bytes())
    b.write_bytes(a.read_bytes())
    ids = add_tracks(ws, [Entry(a, "original"), Entry(b, "original")])
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    assert report.succeeded == 1 and report.duplicates == 1
    led = _ledger(ws)
    assert led[ids[0]] == "success" and led[ids[1]] == "skipped_duplicate"
    detail = _rows(ws, "SELECT detail FROM ledger WHERE track_id = ?", (ids[1],))[0][0]
    assert f"track {ids[0]}" in detail
    # later, a third copy for a new track is recognised against the archived one
    c = tmp_path / "c.flac"
    c.write_bytes(a.read_bytes())
    (ids3,) = add_tracks(ws, [Entry(c, "reencode")])
    assert run_audio(ws, AudioOptions(), InlineExecutor()).duplicates == 2
    assert _ledger(ws)[ids3] == "skipped_duplicate"


def test_bad_inputs_quarantined_run_continues(ws: Workspace, data: Path, tmp_path: Path,
                                               sounds: Path) -> None:
    require_tool("ffmpeg")
    long_flac = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(sounds / "alarm-clock-elapsed.oga"),
                    str(long_flac)], check=True)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(long_flac.read_bytes()[: long_flac.stat().st_size // 3])
    directory = tmp_path / "a-directory.flac"
    directory.mkdir()
    fifo = tmp_path / "a-fifo.mp3"
    os.mkfifo(fifo)
    garbage = tmp_path / "garbage.ogg"
    garbage.write_bytes(b"OggS" + os.urandom(3000))
    entries = [
        Entry(sounds / "bell.oga"),
        Entry(data / "mutagen" / "106-invalid-streaminfo.flac", "original"),
        Entry(data / "mutagen" / "too-short.mp3"),
        Entry(data / "mutagen" / "emptyfile.mp3"),
        Entry(data / "mutagen" / "64bit.mp4"),
        Entry(data / "beets" / "unparseable.wma"),
        Entry(tmp_path / "does-not-exist.flac"),
        Entry(directory),
        Entry(fifo),
        Entry(garbage),
        Entry(truncated, "original"),
        Entry(data / "beets" / "full.flac", "original"),
    ]
    ids = add_tracks(ws, entries)
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    led = _ledger(ws)
    assert led[ids[0]] == led[ids[-1]] == "success"
    assert report.succeeded == 2 and report.error_count == len(entries) - 2
    assert led[ids[6]] == "error_missing"
    assert led[ids[7]] == led[ids[8]] == "error_unreadable"
    assert led[ids[10]] == "error_truncated"
    assert led[ids[4]] == "error_no_audio"
    for tid in ids[1:-1]:
        assert led[tid].startswith("error_"), (tid, led[tid])
    assert sum(report.errors.values()) == len(entries) - 2
    # every failure has a reason file; real files are copied next to it
    reasons = sorted(p.name for p in ws.quarantine.glob("*.reason.txt"))
    assert len(reasons) == len(entries) - 2
    assert (ws.quarantine / f"{ids[1]}-106-invalid-streaminfo.flac").read_bytes() == (
        data / "mutagen" / "106-invalid-streaminfo.flac").read_bytes()
    text = (ws.quarantine / f"{ids[10]}-truncated.flac.reason.txt").read_text()
    assert "error_truncated" in text and str(truncated) in text
    assert not (ws.quarantine / f"{ids[8]}-a-fifo.mp3").exists()  # a FIFO is never opened
    assert len(_rows(ws, "SELECT * FROM reject WHERE stage = 'audio'")) == len(entries) - 2
    # errors are not retried by default, and are with retry_errors
    assert run_audio(ws, AudioOptions(), InlineExecutor()).previous_errors == len(entries) - 2
    assert run_audio(ws, AudioOptions(retry_errors=True), InlineExecutor()).planned == (
        len(entries) - 2)


def test_no_source_and_excluded(ws: Workspace, sounds: Path) -> None:
    ids = add_tracks(ws, [Entry(sounds / "bell.oga"), Entry(sounds / "complete.oga")])
    with ws.store() as store, store.transaction() as conn:
        conn.execute("DELETE FROM source_audio WHERE track_id = ?", (ids[0],))
        conn.execute("UPDATE track SET excluded = 1 WHERE id = ?", (ids[1],))
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    # a selected track without a file is wanted, not a failure (issue 11 §2)
    assert report.wanted == 1 and report.error_count == 0
    assert report.excluded == 1 and report.succeeded == 0
    assert _ledger(ws) == {ids[0]: "wanted", ids[1]: "excluded"}
    # a re-run leaves it wanted and still reports no error
    again = run_audio(ws, AudioOptions(), InlineExecutor())
    assert again.wanted == 1 and again.error_count == 0 and again.previous_errors == 0
    assert not list((ws.audio).glob("*/*/*"))


def test_hostile_metadata_never_reaches_a_path(ws: Workspace, sounds: Path, data: Path) -> None:
    evil = [
        "../../../../tmp/pwned",
        "a/b/c",
        "nul\x00byte",
        "ctl\x01\x1b[2J\x7f",
        "x" * 300,
        "ＣＯＮ.ｍｐ３ ⁄ ∕ ／",  # full-width and slash look-alikes
        "..",
    ]
    names = sorted(p.name for p in sounds.glob("*.oga"))[: len(evil)]
    entries = [Entry(sounds / n, title=t, artist=t) for n, t in zip(names, evil, strict=True)]
    entries.append(Entry(data / "beets" / "full.flac", "original", title=evil[0]))
    add_tracks(ws, entries, album="../../" + "A" * 400)
    run_audio(ws, AudioOptions(), InlineExecutor())
    # identical sources are stored once; every written path is hash-named
    for p in ws.audio.rglob("*"):
        if p.is_file() and p.name not in (".lock",):
            assert re.fullmatch(r"[0-9a-f]{64}\.[a-z0-9]+", p.name), p
    assert not Path("/tmp/pwned").exists() and not (ws.root.parent / "pwned").exists()
    from phonotheque.workspace import SUBDIRS

    assert {p.name for p in ws.root.iterdir()} <= {"catalogue.sqlite", "catalogue.sqlite-wal",
                                                   "catalogue.sqlite-shm", *SUBDIRS}
    for r in _rows(ws, "SELECT path FROM audio_file"):
        assert PATH_RE.fullmatch(r[0])
        tags = mutagen.File(ws.root / r[0]).tags
        assert tags["ALBUM"] == ["../../" + "A" * 400]


def test_hostile_titles_kept_in_tags(ws: Workspace, sounds: Path, tmp_path: Path) -> None:
    # distinct sources so no track is a duplicate of another
    titles = ["../../x", "nul\x00byte", "ctl\x01\x1b", "y" * 300]
    entries = []
    for i, t in enumerate(titles):
        src = tmp_path / f"s{i}.oga"
        src.write_bytes((sounds / ["bell.oga", "complete.oga", "message.oga", "dialog-information.oga"][i]).read_bytes())
        entries.append(Entry(src, title=t))
    ids = add_tracks(ws, entries)
    run_audio(ws, AudioOptions(), InlineExecutor())
    for tid, t in zip(ids, titles, strict=True):
        path = _rows(ws, "SELECT path FROM audio_file WHERE track_id = ?", (tid,))[0][0]
        assert mutagen.File(ws.root / path).tags["TITLE"] == [t.replace("\x00", "")]


def test_cover_art_from_release_and_from_source(ws: Workspace, data: Path, tmp_path: Path) -> None:
    art = data / "beets" / "image-2x3.png"
    (a,) = add_tracks(ws, [Entry(data / "beets" / "whitenoise.flac")], art_path=str(art))
    (b,) = add_tracks(ws, [Entry(data / "beets" / "image.flac")], album="Other")
    run_audio(ws, AudioOptions(), InlineExecutor())
    from mutagen.oggopus import OggOpus

    from phonotheque.audio.tags import extract_picture
    for tid, expect in ((a, art.read_bytes()), (b, None)):
        path = ws.root / _rows(ws, "SELECT path FROM audio_file WHERE track_id = ?", (tid,))[0][0]
        assert "METADATA_BLOCK_PICTURE" in OggOpus(path).tags
        import io

        pic = extract_picture(io.BytesIO(path.read_bytes()), "opus")
        assert pic is not None
        if expect is not None:
            assert pic.data == expect


def test_lock_refuses_second_coordinator(ws: Workspace, sounds: Path) -> None:
    add_tracks(ws, [Entry(sounds / "bell.oga")])
    with _audio_lock(ws), pytest.raises(BusyError, match="another"):
        run_audio(ws, AudioOptions(), InlineExecutor())


def test_stale_temp_files_removed(ws: Workspace, sounds: Path) -> None:
    add_tracks(ws, [Entry(sounds / "bell.oga")])
    stale = ws.audio / "reencode" / "ab" / ".abc.opus.123.deadbeef.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    assert report.stale_temps_removed == 1 and not stale.exists()


def test_enospc_at_the_os_boundary_stops_cleanly(ws: Workspace, sounds: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Portable variant (no mount needed): os.write fails with ENOSPC after a few files."""
    import errno

    import phonotheque.atomic as files  # the one writer

    ids = add_tracks(ws, [Entry(sounds / n) for n in ("bell.oga", "complete.oga", "message.oga",
                                                      "dialog-warning.oga")])
    real_write = os.write
    calls = {"n": 0}

    def flaky_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] > 3:  # the write test + two files fit, then the disk is "full"
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(files.os, "write", flaky_write)
    with pytest.raises(StorageError, match="No space left"):
        run_audio(ws, AudioOptions(batch_size=1), InlineExecutor())
    _assert_consistent(ws)
    led = _ledger(ws)
    assert list(led.values()).count("success") == 2
    monkeypatch.setattr(files.os, "write", real_write)
    assert run_audio(ws, AudioOptions(), InlineExecutor()).succeeded == 2
    assert all(led == "success" for led in _ledger(ws).values())
    assert len(ids) == 4


def _assert_consistent(ws: Workspace) -> None:
    """No temp files; every file under its hash name; every success row has its file."""
    for p in ws.audio.rglob("*"):
        if p.is_file() and p.name != ".lock":
            assert not is_temporary(p.name), p
            assert _sha(p) == p.name.split(".")[0] or p.parent.parent.name == "patches", p
    for r in _rows(ws, "SELECT a.path, a.sha256 FROM audio_file a JOIN ledger l "
                       "ON l.track_id = a.track_id WHERE l.status = 'success'"):
        assert _sha(ws.root / r[0]) == r[1]


def test_full_disk_tmpfs(ws: Workspace, sounds: Path, tmp_path: Path) -> None:
    """A real full disk: audio/ on a 64 KiB tmpfs."""
    names = ["alarm-clock-elapsed.oga", "bell.oga", "complete.oga", "message.oga",
             "dialog-warning.oga", "service-login.oga", "phone-incoming-call.oga"]
    add_tracks(ws, [Entry(sounds / n) for n in names])
    require_tmpfs(ws.audio, "64k")
    try:
        with pytest.raises(StorageError) as exc:
            run_audio(ws, AudioOptions(batch_size=1), InlineExecutor())
        assert "No space left on device" in str(exc.value)
        _assert_consistent(ws)
        assert 0 < list(_ledger(ws).values()).count("success") < len(names)
    finally:
        umount(ws.audio)


def test_read_only_destination(ws: Workspace, sounds: Path) -> None:
    add_tracks(ws, [Entry(sounds / "bell.oga")])
    require_tmpfs(ws.audio, "1m")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(ws.audio)], check=True)
        with pytest.raises(StorageError, match="Read-only file system"):
            run_audio(ws, AudioOptions(), InlineExecutor())
        assert _ledger(ws) and set(_ledger(ws).values()) == {"todo"}
    finally:
        umount(ws.audio)


def test_unreadable_permissions_as_unprivileged_user(tmp_path: Path, data: Path) -> None:
    """Root reads everything, so a forked child drops to 'nobody' and meets a mode-000 file.

    (A fresh interpreter cannot run as nobody here: Python lives under /root.) Everything
    the worker needs is imported before the fork.
    """
    require_root("to drop privileges")
    import phonotheque.audio.tags  # noqa: F401
    from phonotheque.audio import AudioOptions, TagSet, WorkItem, run_item

    src = tmp_path / "secret.flac"
    src.write_bytes((data / "beets" / "full.flac").read_bytes())
    src.chmod(0)
    out = tmp_path / "ws"
    out.mkdir()
    tmp_path.chmod(0o755)
    out.chmod(0o777)
    item = WorkItem(1, 1, str(src), "original", str(out), TagSet(), AudioOptions())

    def run() -> tuple[str, str]:
        res = run_item(item)
        return res.status, res.detail

    status, detail = as_nobody(run)  # type: ignore[misc]
    assert status == "error_unreadable" and "Permission denied" in detail


def test_ogg_serials_stable_and_distinct(ws: Workspace, sounds: Path) -> None:
    add_tracks(ws, [Entry(sounds / "bell.oga"), Entry(sounds / "complete.oga")])
    run_audio(ws, AudioOptions(), InlineExecutor())
    serials = []
    for (path,) in _rows(ws, "SELECT path FROM audio_file ORDER BY track_id"):
        head = (ws.root / path).read_bytes()[:27]
        assert head[:4] == b"OggS"
        serials.append(int.from_bytes(head[14:18], "little"))
    assert 0 not in serials and len(set(serials)) == 2


def test_licence_tag_only_when_the_audio_licence_is_known(ws: Workspace, sounds: Path) -> None:
    (tid,) = add_tracks(ws, [Entry(sounds / "bell.oga")])
    with ws.store() as store, store.transaction() as conn:
        conn.execute("UPDATE source_audio SET licence = NULL")
    run_audio(ws, AudioOptions(), InlineExecutor())
    path = _rows(ws, "SELECT path FROM audio_file WHERE track_id = ?", (tid,))[0][0]
    tags = mutagen.File(ws.root / path).tags
    assert "LICENSE" not in tags and tags["PHONOTHEQUE_METADATA_LICENSE"] == ["CC0-1.0"]


def test_hostile_source_file_names_are_quarantined_safely(ws: Workspace, tmp_path: Path,
                                                          data: Path) -> None:
    names = ["new\nline .. x.mp3", "ｓｌａｓｈ∕" + "é" * 100 + ".mp3", "-rf --no-preserve-root.mp3"]
    entries = []
    for n in names:
        p = tmp_path / n
        # distinct bytes, or identical sources would be deduplicated before probing
        p.write_bytes((data / "mutagen" / "too-short.mp3").read_bytes() + n.encode())
        entries.append(Entry(p))
    ids = add_tracks(ws, entries)
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    assert report.error_count == len(names)
    got = sorted(p.name for p in ws.quarantine.iterdir())
    assert len(got) == 2 * len(names)
    for name in got:
        assert re.fullmatch(r"\d+-[A-Za-z0-9._-]{1,80}(\.reason\.txt)?", name), name
        assert len(name.encode()) < 120
    reason = (ws.quarantine / f"{ids[0]}-new_line_.._x.mp3.reason.txt").read_text()
    assert "reason: error_" in reason


def test_reselection_to_another_tier_is_redone(ws: Workspace, data: Path, sounds: Path) -> None:
    flac, mp3 = add_tracks(ws, [Entry(data / "beets" / "whitenoise.flac", "reencode"),
                                Entry(data / "beets" / "full.mp3", "reencode")])
    run_audio(ws, AudioOptions(), InlineExecutor())
    tiers = dict(_rows(ws, "SELECT track_id, tier FROM audio_file"))
    assert tiers == {flac: "reencode", mp3: "original"}  # the 80 kbps mp3 is kept as it is
    with ws.store() as store, store.transaction() as conn:
        conn.execute("UPDATE selection SET tier = 'original' WHERE track_id = ?", (flac,))
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    assert report.planned == 1 and report.already_done == 1
    tiers = dict(_rows(ws, "SELECT track_id, tier FROM audio_file"))
    assert tiers == {flac: "original", mp3: "original"}
    assert run_audio(ws, AudioOptions(), InlineExecutor()).planned == 0
