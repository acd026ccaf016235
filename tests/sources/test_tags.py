"""Audio tags with mutagen, on the real audio files of beets, mutagen and Picard."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TSRC

from phonotheque.ingest import ingest
from phonotheque.workspace import Workspace
from tests.os_helpers import as_nobody
from tests.require import require_root

FULL_MBID = "8b882575-08a5-4452-a7a7-cbb8a1531f9e"  # MUSICBRAINZ_TRACKID in beets' full.*


def _audio(ws: Workspace) -> dict[str, dict]:
    with ws.store(readonly=True) as s:
        rows = s.query(
            "SELECT s.*, t.key AS tkey, t.mbid AS tmbid, t.title, t.artist_credit, t.disc, "
            "t.position, r.title AS album, r.date, r.label FROM source_audio s "
            "JOIN track t ON t.id = s.track_id LEFT JOIN release r ON r.id = t.release_id")
    return {r["path"]: dict(r) for r in rows}


def test_beets_full_files_in_every_container(ws: Workspace, data: Path) -> None:
    report = ingest(ws, "tags", [data / "beets"])
    files = _audio(ws)
    full = {Path(p).name: r for p, r in files.items() if Path(p).name.startswith("full.")}
    assert sorted(full) == ["full.aiff", "full.alac.m4a", "full.ape", "full.dsf", "full.flac",
                            "full.m4a", "full.mp3", "full.mpc", "full.ogg", "full.opus",
                            "full.wma", "full.wv"]
    codecs = {name: (r["container"], r["codec"]) for name, r in full.items()}
    assert codecs["full.flac"] == ("flac", "flac")
    assert codecs["full.opus"] == ("ogg", "opus")
    assert codecs["full.alac.m4a"] == ("mp4", "alac")
    assert codecs["full.m4a"] == ("mp4", "aac")
    assert codecs["full.wma"] == ("asf", "wma")
    assert codecs["full.dsf"] == ("dsf", "dsd")
    for name, r in full.items():
        # Vorbis comments, ID3, MP4, APEv2 and ASF all give the same canonical fields
        # (beets' full.aiff/.mpc carry fewer tags, see below).
        if name in ("full.mpc",):
            continue
        assert r["tmbid"] == FULL_MBID, name
        assert (r["title"], r["artist_credit"], r["album"], r["disc"], r["position"],
                r["date"], r["label"]) == ("full", "the artist", "the album", 4, 2, "2001",
                                          "the label"), name
        assert r["duration_ms"] and 900 <= r["duration_ms"] <= 1100 or name == "full.dsf"
        assert r["sample_rate"] and r["channels"], name
    # all of them land on one track: the first creates it, the rest match its MBID
    assert len({r["track_id"] for n, r in full.items() if n != "full.mpc"}) == 1
    assert sorted(r["match"] for n, r in full.items() if n != "full.mpc").count("mbid") == 10
    assert report.rejected > 0


def test_unparseable_and_malformed_files_are_rejected_with_reasons(
    ws: Workspace, data: Path
) -> None:
    report = ingest(ws, "tags", [data / "beets", data / "mutagen"])
    with ws.store(readonly=True) as s:
        rejects = {(Path(r.source).name, r.locator): r.reason for r in s.rejects()}
    # beets' unparseable.*: the date tag is 'Oct 3, 1995' (or an empty ID3 TDRC)
    for suffix in ("flac", "ogg", "opus", "m4a", "alac.m4a", "ape", "mpc", "wv", "wma"):
        assert rejects[(f"unparseable.{suffix}", "tag date")] == (
            "tag date: unparseable value 'Oct 3, 1995'"), suffix
    for suffix in ("mp3", "dsf"):
        assert "present but empty" in rejects[(f"unparseable.{suffix}", "tag date")]
    # ... but the files themselves are still attached, without a date
    files = {Path(p).name: r for p, r in _audio(ws).items()}
    assert files["unparseable.flac"]["date"] is None
    # files mutagen cannot parse at all
    assert rejects[("emptyfile.mp3", "file")] == "empty file (0 bytes)"
    assert rejects[("no_ext_not_music", "file")] == "empty file (0 bytes)"
    assert rejects[("too-short.mp3", "file")].startswith("unparseable audio: HeaderNotFoundError")
    assert "file said 16 bytes" in rejects[("106-invalid-streaminfo.flac", "file")]
    assert "file said 4 bytes" in rejects[("ooming-header.flac", "file")]
    assert "ID3UnsupportedVersionError" in rejects[("almostempty.mpc", "file")]
    assert rejects[("64bit.mp4", "file")].startswith("not a recognised audio file")
    # everything else mutagen reads is attached; images are skipped, not rejected
    failed = {name for name, loc in rejects if loc == "file"}
    for folder in (data / "beets", data / "mutagen"):
        for p in folder.iterdir():
            if p.is_dir() or p.suffix.lower() in (".jpg", ".png", ".tiff"):
                continue
            readable = p.stat().st_size > 0 and _mutagen_reads(p)
            assert (p.name in files) == readable, p.name
            assert (p.name in failed) == (not readable), p.name
    assert report.rejected + report.values_dropped == len(rejects)


def _mutagen_reads(p: Path) -> bool:
    try:
        return mutagen.File(p) is not None
    except Exception:  # noqa: BLE001
        return False


def test_picard_and_mutagen_formats(ws: Workspace, data: Path) -> None:
    ingest(ws, "tags", [data / "picard", data / "mutagen"])
    files = {Path(p).name: r for p, r in _audio(ws).items()}
    app = files["flac_application.flac"]
    assert (app["title"], app["artist_credit"], app["album"], app["date"], app["position"]) == (
        "I Want the World to Stop", "Belle and Sebastian",
        "Belle and Sebastian Write About Love", "2010-10-11", 4)
    assert app["tkey"] == app["tmbid"]  # keyed by its recording MBID
    containers = {r["container"] for r in files.values()}
    assert {"flac", "ogg", "mp3", "mp4", "asf", "aiff", "wav", "ape", "wavpack", "mpc", "tta",
            "tak", "ofr", "dsf", "dff", "aac", "ac3", "midi"} <= containers
    untagged = files["test.wav"]
    assert untagged["tkey"].startswith("tags:") and untagged["title"] == "test"


def test_match_by_isrc_then_create(ws: Workspace, data: Path, tmp_path: Path) -> None:
    ingest(ws, "musicbrainz", [data / "picard/ws_data/recording.json"])  # has GBAHS1400099
    music = tmp_path / "music"
    music.mkdir()
    flac = music / "isrc.flac"
    shutil.copy(data / "beets/min.flac", flac)
    flac.chmod(0o644)
    f = FLAC(flac)
    f["isrc"] = "gb-ahs-14-00099"
    f.save()
    mp3 = music / "other.mp3"
    shutil.copy(data / "beets/min.mp3", mp3)
    mp3.chmod(0o644)
    tags = ID3(mp3)
    tags.add(TSRC(encoding=3, text=["FRZ039800212"]))
    tags.save()
    ingest(ws, "tags", [music])
    files = {Path(p).name: r for p, r in _audio(ws).items()}
    assert files["isrc.flac"]["match"] == "isrc"
    assert files["isrc.flac"]["tmbid"] == "cb2cc207-8125-445c-9ef9-6ea44eee959a"
    assert files["other.mp3"]["match"] == "created"
    with ws.store(readonly=True) as s:
        assert s.scalar("SELECT count(*) FROM track_isrc WHERE isrc = 'FRZ039800212'") == 1


def test_hostile_file_names(ws: Workspace, data: Path, tmp_path: Path) -> None:
    music = tmp_path / "music"
    (music / "sub").mkdir(parents=True)
    src = data / "beets/min.flac"
    names = ["line\nbreak.flac", "..dots.flac", "x" * 250 + ".flac", "sub/ok.flac",
             "tab\tand ✓.flac"]
    for n in names:
        shutil.copy(src, music / n)
    bad = os.fsencode(music) + b"/latin1-\xe9t\xe9.flac"
    shutil.copy(src, bad)
    (music / "zero.flac").write_bytes(b"")
    (music / "dangling.mp3").symlink_to(music / "missing.mp3")
    (music / "loop").symlink_to(music)  # a folder link is not walked into: a reject
    report = ingest(ws, "tags", [music])
    files = _audio(ws)
    assert {Path(p).name for p in files} == {Path(n).name for n in names}
    with ws.store(readonly=True) as s:
        rejects = {r.source.rsplit("/", 1)[-1]: r.reason for r in s.rejects()}
    assert rejects == {
        "latin1-\\xe9t\\xe9.flac": "file name is not valid UTF-8; rename the file",
        "zero.flac": "empty file (0 bytes)",
        "dangling.mp3": f"a symbolic link to {music / 'missing.mp3'}, which names no file: "
                        "not read",
        "loop": f"a symbolic link to a folder ({music}): not walked into; give that folder "
                "as an input to read it",
    }
    assert report.rejected == 4
    # stored paths are real: they open
    for p in files:
        assert Path(p).is_file()


def test_permission_denied(data: Path) -> None:
    """A mode-000 file is a reject naming the file; its readable neighbour is ingested.

    Root reads files whatever their permissions (and CI runs as root), so the ingest
    runs in a forked child that dropped to 'nobody', in a folder nobody can reach
    (pytest's own tmp_path lives under a root-only folder). The readable file proves
    the child could get there: the denial is the file's mode, not the path's.
    """
    import mutagen.flac  # noqa: F401 - a child running as nobody cannot import from /root

    import phonotheque.sources.tags  # noqa: F401

    require_root("to drop privileges")
    base = Path(tempfile.mkdtemp(prefix="phono-perm-"))
    try:
        base.chmod(0o777)
        music = base / "music"
        music.mkdir(mode=0o755)
        locked, readable = music / "locked.flac", music / "open.flac"
        for p in (locked, readable):
            shutil.copy(data / "beets/min.flac", p)
            p.chmod(0o644)
        locked.chmod(0)

        def run() -> tuple[list[tuple[str, str, str]], list[str], int]:
            ws = Workspace.create(base / "ws")
            report = ingest(ws, "tags", [music])
            with ws.store(readonly=True) as s:
                rejects = [(Path(r.source).name, r.locator, r.reason) for r in s.rejects()]
            return rejects, sorted(Path(p).name for p in _audio(ws)), report.rejected

        rejects, ingested, rejected = as_nobody(run)  # type: ignore[misc]
    finally:
        shutil.rmtree(base)
    assert ingested == ["open.flac"]
    assert rejected == 1
    assert rejects == [("locked.flac", "file", "cannot read: Permission denied")]  # not "unparseable"


def test_rerun_reads_nothing_again(ws: Workspace, data: Path, tmp_path: Path) -> None:
    music = tmp_path / "m"
    music.mkdir()
    for n in ("full.flac", "full.mp3", "full.opus"):
        shutil.copy(data / "beets" / n, music / n)
    first = ingest(ws, "tags", [music])
    assert first.by_kind["audio"] == [3, 0, 0]
    second = ingest(ws, "tags", [music])
    assert second.read == 0 and second.added == 0
    # a changed file is read again
    os.utime(music / "full.mp3", ns=(1, 1))
    third = ingest(ws, "tags", [music])
    assert third.by_kind["audio"] == [0, 1, 0]
