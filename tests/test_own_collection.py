"""Issue 11 §1: archiving your own collection with `phono build tags:DIR`, and build
options kept in the workspace. Real files, real ffmpeg, real checkers, through the CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import orjson

from phonotheque.audio.reconstruct import rebuild
from tests.require import require_tool

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")
DATA = Path(__file__).parent / "data"

# Three real files of three containers, none sharing a recording id: three tracks.
FILES = [DATA / "picard" / "test.ogg", DATA / "picard" / "test.flac",
         DATA / "picard" / "test.mp3"]


def phono(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([PHONO, *args], capture_output=True, text=True, env=env, check=False)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _pcm_md5(path: Path) -> str:
    """MD5 of the decoded audio: equal for two files holding the same audio stream."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-f", "md5", "-"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _valid(path: Path, codec: str) -> bool:
    if codec == "flac":
        return subprocess.run(["flac", "-t", "-s", str(path)], check=False).returncode == 0
    if codec in ("vorbis", "opus"):
        return subprocess.run(["oggz-validate", str(path)], check=False).returncode == 0
    # MP3: ffmpeg decodes it with no error, as it does the input
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, check=False)
    return out.returncode == 0 and out.stderr == ""


def _rows(ws: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(ws / "catalogue.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_build_own_folder_archives_every_file_as_original(tmp_path: Path) -> None:
    for tool in ("ffmpeg", "flac", "oggz-validate"):
        require_tool(tool)
    music = tmp_path / "Music"
    music.mkdir()
    for f in FILES:
        shutil.copy(f, music / f.name)
        assert _valid(f, {".ogg": "vorbis", ".flac": "flac", ".mp3": "mp3"}[f.suffix])
    ws = tmp_path / "my-archive"

    # Before issue 11: 0 tracks selected, exit 0, "coverage 100 %".
    run = phono("build", f"tags:{music}", "-w", str(ws), "--max-files", "4")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every held track (no listen data)" in run.stdout
    assert "option changed: --max-files default -> 4" in run.stdout

    files = _rows(ws, """SELECT a.*, s.path AS source FROM audio_file a
                         JOIN source_audio s ON s.track_id = a.track_id""")
    assert sorted(Path(r["source"]).name for r in files) == sorted(f.name for f in FILES)
    assert {r["status"] for r in _rows(ws, "SELECT status FROM ledger")} == {"success"}
    data_files = {_sha(p): p for p in (ws / "torrents").glob("phonotheque_data__*/*")}
    released = _rows(ws, "SELECT count(*) AS n FROM torrent WHERE kind = 'data' AND wave = 1")
    assert released[0]["n"] >= 2  # 3 files + 3 patches, 4 files per folder
    for r in files:
        source = Path(r["source"])
        archived = ws / r["path"]
        # kept as the original, tags rewritten only: same audio, same container, valid
        assert r["tier"] == "original" and r["original_sha256"] == _sha(source)
        assert archived.suffix == source.suffix
        assert _pcm_md5(archived) == _pcm_md5(source)
        assert _valid(archived, r["codec"]), archived
        # the exact original comes back from the archive and its patch
        out = tmp_path / f"rebuilt{source.suffix}"
        assert rebuild(archived, ws / r["patch_path"], out, r["original_sha256"]).verified
        assert out.read_bytes() == source.read_bytes()
        # ... and the file is in a released data torrent, byte for byte
        assert r["sha256"] in data_files
    verify = phono("verify", str(ws / "torrents"), "--against", str(ws / "publish"))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    index = orjson.loads((ws / "publish" / "torrents.json").read_bytes())
    assert index

    # A re-run without options keeps what the first run did (and its --max-files).
    again = phono("build", f"tags:{music}", "-w", str(ws))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "options kept from earlier builds: --max-files 4" in again.stdout
    assert "nothing to do" in again.stdout
    assert len(_rows(ws, "SELECT * FROM selection")) == 3


def _listened_catalogue(tmp_path: Path) -> list[str]:
    """Three tracks with listens by track key: a small CSV and tags-free MusicBrainz JSON."""
    listens = tmp_path / "listens.csv"
    listens.write_text(
        "recording_mbid,count\n"
        "9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3,100\n"
        "9f9cf187-d6f9-437f-9d98-d59cdbd52757,10\n"
        "d201070b-ff15-49ce-877b-f91032617faf,1\n")
    lines = []
    for i, mbid in enumerate(("9e2ad5bc-c6f9-40d2-a36f-3122ee2072a3",
                              "9f9cf187-d6f9-437f-9d98-d59cdbd52757",
                              "d201070b-ff15-49ce-877b-f91032617faf")):
        lines.append(orjson.dumps({"id": mbid, "title": f"Song {i}", "length": 200000,
                                   "artist-credit": [{"name": "A", "artist": {
                                       "id": "0383dadf-2a4e-4d10-a46a-e9e041da8eb3",
                                       "name": "A"}}]}).decode())
    mb = tmp_path / "recordings.jsonl"
    mb.write_text("\n".join(lines) + "\n")
    return [f"musicbrainz:{mb}", f"listens:{listens}"]


def _last_select(ws: Path) -> dict[str, object]:
    row = _rows(ws, "SELECT options, result FROM select_run ORDER BY id DESC LIMIT 1")[0]
    return {"options": orjson.loads(row["options"]), "result": orjson.loads(row["result"])}


def test_build_options_are_kept_and_changes_reported(tmp_path: Path) -> None:
    sources = _listened_catalogue(tmp_path)
    ws = tmp_path / "ws"
    first = phono("build", *sources, "-w", str(ws), "--coverage", "0.5",
                  "--stop-after", "audio")
    # no file is held: the selected track is wanted, not a failure (issue 11 §2; exit 10
    # and "1 tracks failed in audio" before)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 wanted, 0 errors" in first.stdout and "failed" not in first.stdout
    assert "option changed: --coverage default -> 0.5" in first.stdout
    assert _last_select(ws)["options"]["coverage"] == 0.5  # type: ignore[index]
    assert len(_rows(ws, "SELECT * FROM selection")) == 1

    # Before issue 11 a re-run without the option silently went back to 0.996.
    second = phono("build", *sources, "-w", str(ws), "--stop-after", "select")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "options kept from earlier builds: --coverage 0.5" in second.stdout
    assert "option changed" not in second.stdout
    assert len(_rows(ws, "SELECT * FROM selection")) == 1

    third = phono("build", *sources, "-w", str(ws), "--coverage", "0.95", "--all",
                  "--layout", "readable", "--torrent-version", "1", "--budget", "1GB",
                  "--stop-after", "select")
    assert third.returncode == 0, third.stdout + third.stderr
    for line in ("--coverage 0.5 -> 0.95", "--all default -> on", "--layout default -> readable",
                 "--torrent-version default -> 1", "--budget default -> 1000000000"):
        assert f"option changed: {line}" in third.stdout, third.stdout
    assert _last_select(ws)["result"]["mode"] == "all"  # type: ignore[index]
    kept = orjson.loads(_rows(ws, "SELECT value FROM meta WHERE key = 'build.options'")[0][0])
    assert kept == {"budget_bytes": 1_000_000_000, "coverage": 0.95, "layout": "readable",
                    "take_all": True, "torrent_version": "1"}

    # --tail-threshold replaces a kept --original-share (two ways to draw one line)
    phono("build", *sources, "-w", str(ws), "--original-share", "0.2", "--stop-after", "select")
    fourth = phono("build", *sources, "-w", str(ws), "--tail-threshold", "5", "--no-all",
                   "--stop-after", "select")
    assert "option changed: --original-share 0.2 -> default" in fourth.stdout
    assert "option changed: --all on -> off" in fourth.stdout
    assert _last_select(ws)["result"]["mode"] == "coverage"  # type: ignore[index]

    # a bad value is refused and not kept
    bad = phono("build", *sources, "-w", str(ws), "--max-files", "0", "--stop-after", "select")
    assert bad.returncode == 2
    bad = phono("build", *sources, "-w", str(ws), "--max-bytes", "0", "--stop-after", "select")
    assert bad.returncode == 2, bad.stdout
    kept = orjson.loads(_rows(ws, "SELECT value FROM meta WHERE key = 'build.options'")[0][0])
    assert "max_bytes" not in kept


def test_readable_pack_names_a_multi_disc_release_alike_on_both_engines(
        tmp_path: Path) -> None:
    """A file of disc 1 of a two-disc release (the demo's ケアレス), the only one held:
    the readable layout names it ``1-01 ...`` because the release has two discs. The
    columnar pack read the disc count from the held tracks only (one disc) and named it
    ``01 ...``, so the data torrent differed from the SQLite engine's."""
    require_tool("ffmpeg")
    from mutagen.flac import FLAC

    music = tmp_path / "Music"
    music.mkdir()
    song = music / "careless.flac"
    shutil.copy(DATA / "picard" / "test.flac", song)
    tags = FLAC(song)
    tags.delete()
    tags["musicbrainz_trackid"] = "9e1bd108-5e69-41cf-b744-ff7731293403"  # disc 1, track 1
    tags.save()
    mb = Path(__file__).parents[1] / "src" / "phonotheque" / "demo_data" / "musicbrainz"
    names = {}
    for engine in ("sqlite", "duckdb"):
        ws = tmp_path / engine
        for args in (("init", str(ws), "--engine", engine),
                     ("ingest", "musicbrainz", str(mb / "mbdump-sample.jsonl"), "-w", str(ws)),
                     ("ingest", "tags", str(music), "-w", str(ws)),
                     ("select", "--all", "-w", str(ws)),
                     ("audio", "-w", str(ws)),
                     ("pack", "--layout", "readable", "-w", str(ws))):
            run = phono(*args)
            assert run.returncode == 0, (engine, args, run.stdout + run.stderr)
        # the folder's name carries the time it was packed: compare what is inside it
        names[engine] = sorted(p.relative_to(p.parents[2]).as_posix()
                               for p in (ws / "torrents").glob("phonotheque_data__*/**/*.flac"))
    assert [Path(n).name for n in names["sqlite"]] == ["1-01 ケアレス.flac"]
    assert names["duckdb"] == names["sqlite"]


def test_columnar_tags_resumed_after_a_crash_between_its_two_commits_match_alike(
        tmp_path: Path) -> None:
    """The state a SIGKILL between the two commits leaves (reproduced with a real kill
    at ~1.7 s into a 4,500-file ingest): the tracks merged into catalogue.duckdb, no
    ``source_audio`` row for their files. The re-run must record what an uninterrupted
    run records."""
    music = tmp_path / "Music"
    music.mkdir()
    from mutagen.flac import FLAC

    shutil.copy(DATA / "picard" / "test.flac", music / "a.flac")
    tags = FLAC(music / "a.flac")
    tags["musicbrainz_trackid"] = "5b0ef8e9-9b55-4a3e-aca6-d816d6bbc00f"  # in no catalogue
    tags.save()
    ws = tmp_path / "ws"
    assert phono("init", str(ws), "--engine", "duckdb").returncode == 0
    first = phono("ingest", "tags", str(music), "-w", str(ws))
    assert first.returncode == 0, first.stdout + first.stderr
    before = [tuple(r) for r in _rows(ws, "SELECT path, track_id, match FROM source_audio")]
    assert [m for _, _, m in before] == ["created"]
    conn = sqlite3.connect(ws / "catalogue.sqlite")  # the second commit, lost
    with conn:
        conn.execute("DELETE FROM source_audio")
    conn.close()
    again = phono("ingest", "tags", str(music), "-w", str(ws))
    assert again.returncode == 0, again.stdout + again.stderr
    after = [tuple(r) for r in _rows(ws, "SELECT path, track_id, match FROM source_audio")]
    assert after == before
