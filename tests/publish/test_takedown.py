"""A takedown takes effect everywhere: `phono exclude add` + `phono release`, as an operator
runs them, against a real running `phono serve` and a real libtorrent `phono seed`."""

from __future__ import annotations

import contextlib
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import libtorrent as lt
import orjson
import pytest
from click.testing import CliRunner

from phonotheque.cli import main
from phonotheque.workspace import Workspace
from tests.publish.archive import make_archive
from tests.serve.clients import libtorrent_download

VICTIM = 1  # index into make_archive's tracks: band 1, released in the first wave


def _phono(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _run(ws: Workspace, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(main, [*args, "-w", str(ws.root)])
    assert res.exit_code == code, res.output
    return res.output


@pytest.fixture
def released(ws: Workspace, data: Path) -> tuple[Workspace, int, str]:
    """A released archive (several data folders, one wave); the victim's id and ISRC."""
    arc = make_archive(ws, data, patch_every=2)
    _run(ws, "pack", "--max-files", "3")
    _run(ws, "release")
    tid = arc.track_ids[VICTIM]
    with ws.store(readonly=True) as store:
        isrc = str(store.scalar("SELECT isrc FROM track_isrc WHERE track_id = ?", (tid,)))
    return ws, tid, isrc


def _take_down(ws: Workspace, isrc: str) -> None:
    _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "takedown request")
    _run(ws, "release")


@contextlib.contextmanager
def _serving(ws: Workspace) -> Iterator[str]:
    proc = _phono("serve", "-w", str(ws.root), "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "search page: http://" in line, line
        yield line.split("search page: ")[1].split()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def _leaks(url: str, tid: int, isrc: str, secrets: set[str]) -> list[str]:
    """Which of the server's answers about the track still carry a file, path or magnet."""
    answers = {
        "/api/tracks": httpx.get(f"{url}api/tracks/{tid}", timeout=10),
        "/api/isrc": httpx.get(f"{url}api/isrc/{isrc}", timeout=10),
        "/track": httpx.get(f"{url}track/{tid}", timeout=10),
        "/search": httpx.get(f"{url}search", params={"q": "Bell"}, timeout=10),
        "/api/search": httpx.get(f"{url}api/search", params={"q": "Bell"}, timeout=10),
    }
    out = []
    for where, r in answers.items():
        assert r.status_code == 200, (where, r.status_code)
        out += [f"{where}: {s[:30]}" for s in secrets if s in r.text]
    return out


def _secrets(ws: Workspace, tid: int) -> set[str]:
    """What identifies the track's file: its sha256, its paths, the magnets of its torrents."""
    db = sqlite3.connect(ws.publish / "metadata.sqlite")
    rows = db.execute("SELECT f.path, f.sha256, o.magnet, f.patch_path FROM file f "
                      "JOIN torrent o ON o.id = f.torrent_id WHERE f.track_id = ?",
                      (tid,)).fetchall()
    db.close()
    assert rows
    return {v.replace("&", "&amp;") if v.startswith("magnet:") else v
            for r in rows for v in r if v} | {v for r in rows for v in r if v}


def test_takedown_reaches_a_running_server(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    secrets = _secrets(ws, tid)
    with _serving(ws) as url:
        assert _leaks(url, tid, isrc, secrets)  # before: the file is served
        _take_down(ws, isrc)
        deadline = time.monotonic() + 15
        while (leaks := _leaks(url, tid, isrc, secrets)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leaks == []
        track = httpx.get(f"{url}api/tracks/{tid}", timeout=10).json()
        assert track["status"] == "excluded" and track["withdrawn"] is True
        assert track["files"] == [] and track["title"] == "Bell"  # metadata stays
        assert "withdrawn" in httpx.get(f"{url}track/{tid}", timeout=10).text
        other = httpx.get(f"{url}api/tracks/{tid + 1}", timeout=10).json()
        assert other["files"] and other["withdrawn"] is False


def test_takedown_is_not_in_the_published_files(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    secrets = _secrets(ws, tid)
    _take_down(ws, isrc)
    db = sqlite3.connect(ws.publish / "metadata.sqlite")
    assert db.execute("SELECT count(*) FROM file WHERE track_id = ?", (tid,)).fetchone() == (0,)
    dump = "\n".join(db.iterdump())
    db.close()
    index = (ws.publish / "torrents.json").read_text() + (ws.publish / "magnets.txt").read_text()
    leaked = [s[:30] for s in secrets if s in dump or s in index]
    assert leaked == []
    # the obsolete torrents that carried it (its folder, that folder's AAC metadata and
    # the old database) are listed, withdrawn, without magnet or .torrent
    entries = orjson.loads((ws.publish / "torrents.json").read_bytes())
    withdrawn = [e for e in entries if e.get("withdrawn")]
    assert sorted(e["role"] for e in withdrawn) == ["aac_meta", "audio", "database"]
    assert all(e["obsolete"] and e["magnet_link"] is None and e["torrent"] is None
               for e in withdrawn)
    assert all(not (ws.publish / "torrents" / f"{e['display_name']}.torrent").exists()
               for e in withdrawn)


def test_a_fresh_server_hides_the_file(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    secrets = _secrets(ws, tid)
    _take_down(ws, isrc)
    with _serving(ws) as url:
        assert _leaks(url, tid, isrc, secrets) == []
        torrents = httpx.get(f"{url}api/torrents", timeout=10).json()["torrents"]
        assert [t for t in torrents if t["magnet"] in secrets] == []


def _seed(ws: Workspace) -> tuple[subprocess.Popen[str], int, list[str]]:
    proc = _phono("seed", "-w", str(ws.root), "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd",
                  "--no-utp")
    assert proc.stdout is not None
    lines = []
    for _ in range(50):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("seeding "):
            return proc, int(line.rsplit(":", 1)[1]), lines
    proc.kill()
    raise AssertionError("".join(lines) + (proc.stderr.read() if proc.stderr else ""))


def test_seed_after_a_takedown_seeds_every_current_torrent(
    released: tuple[Workspace, int, str], tmp_path: Path
) -> None:
    ws, _tid, isrc = released
    _take_down(ws, isrc)
    entries = orjson.loads((ws.publish / "torrents.json").read_bytes())
    current = [e for e in entries if not e["obsolete"]]
    proc, port, lines = _seed(ws)
    try:
        assert f"seeding {len(current)} torrents" in lines[-1]
        rebuilt = next(e for e in current if e["kind"] == "data" and e["wave"] == 2)
        libtorrent_download(ws.publish / rebuilt["torrent"], tmp_path / "dl",
                            ("127.0.0.1", port), timeout=60)
        assert (tmp_path / "dl" / rebuilt["display_name"]).is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_seed_reports_a_missing_payload_and_seeds_the_rest(
    released: tuple[Workspace, int, str],
) -> None:
    ws, _tid, _isrc = released
    entries = orjson.loads((ws.publish / "torrents.json").read_bytes())
    current = [e for e in entries if not e["obsolete"]]
    lost = next(e for e in current if e["kind"] == "data")
    shutil.rmtree(ws.torrents / lost["display_name"])
    proc, _port, lines = _seed(ws)
    try:
        text = "".join(lines)
        assert f"seeding {len(current) - 1} torrents" in text
        assert "missing" in text and lost["display_name"] in text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_ledger_shows_the_exclusion_at_once(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "takedown request")
    doc = orjson.loads(_run(ws, "ledger", "--status", "excluded", "--json"))
    assert [t["track_id"] for t in doc["tracks"]] == [tid]
    assert doc["counts"]["success"] == 9
    _run(ws, "exclude", "remove", "isrc", isrc)
    doc = orjson.loads(_run(ws, "ledger", "--json"))
    assert "excluded" not in doc["counts"]
    assert doc["counts"]["success"] == 10  # its audio is still there: success again


def test_ingest_applies_a_listed_takedown_to_the_ledger(released: tuple[Workspace, int, str],
                                                        tmp_path: Path) -> None:
    ws, tid, isrc = released
    from phonotheque.model import Exclusion

    with ws.store() as store:  # listed by an earlier phono, before the ledger followed
        store.add_exclusion(Exclusion("isrc", isrc, "takedown request"))
    listens = tmp_path / "listens.csv"
    listens.write_text(f"isrc,count\n{isrc},3\n")
    _run(ws, "ingest", "listens", str(listens))
    doc = orjson.loads(_run(ws, "ledger", "--status", "excluded", "--json"))
    assert [t["track_id"] for t in doc["tracks"]] == [tid]


def test_exclude_add_reports_what_this_entry_matched(released: tuple[Workspace, int, str],
                                                     ) -> None:
    ws, _tid, isrc = released
    out = _run(ws, "exclude", "add", "--isrc", isrc, "--reason", "r")
    assert "matches 1 track" in out
    out = _run(ws, "exclude", "add", "--mbid", "00000000-0000-4000-9000-000000000004",
               "--reason", "r")  # a release of one track
    assert "matches 1 track" in out and "2 tracks excluded in all" in out
    out = _run(ws, "exclude", "add", "--isrc", "USRC17607839", "--reason", "r")
    assert "matches no track" in out
    out = _run(ws, "exclude", "add", "--mbid", "not-a-uuid", "--reason", "r", code=2)
    assert "not-a-uuid" in out and "MBID" in out
    # remove normalises the value as add did
    dashed = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}".lower()
    assert "removed" in _run(ws, "exclude", "remove", "isrc", dashed)
    assert "not found" in _run(ws, "exclude", "remove", "isrc", dashed)


def test_gc_removes_taken_down_audio(released: tuple[Workspace, int, str]) -> None:
    ws, tid, isrc = released
    with ws.store(readonly=True) as store:
        row = store.query("SELECT path, patch_path FROM audio_file WHERE track_id = ?", (tid,))[0]
    files = [ws.root / row["path"]] + ([ws.root / row["patch_path"]] if row["patch_path"] else [])
    assert all(f.is_file() for f in files)
    _take_down(ws, isrc)
    out = _run(ws, "gc", "--dry-run")
    assert all(f.relative_to(ws.root).as_posix() in out for f in files)
    assert all(f.is_file() for f in files)
    out = _run(ws, "gc")
    assert not any(f.exists() for f in files)
    assert "nothing to remove" in _run(ws, "gc")
    # every other track still packs, releases and verifies
    _run(ws, "release")
    _run(ws, "verify", str(ws.torrents))


def _lines_until(proc: subprocess.Popen[str], seen: list[str], wanted: list[str],
                 timeout: float) -> list[str]:
    """Read the seeder's output (into ``seen``) until every ``wanted`` text appeared;
    returns those still missing when ``timeout`` runs out or the process ends."""
    found: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            found.put(line)
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while [w for w in wanted if not any(w in s for s in seen)] and time.monotonic() < deadline:
        try:
            line = found.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
    return [w for w in wanted if not any(w in s for s in seen)]


def _offered(torrent: Path, port: int, dest: Path, timeout: float) -> bool:
    """Whether the seeder on 127.0.0.1:``port`` answers a real libtorrent client asking
    for ``torrent`` as a seed or sends it data (it refuses the handshake of a torrent it
    does not hold)."""
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False,  # type: ignore[call-overload]
                      "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                      "enable_incoming_utp": False, "enable_outgoing_utp": False,
                      "allow_multiple_connections_per_ip": True, "alert_mask": 0})
    atp = lt.load_torrent_file(str(torrent))
    atp.save_path = str(dest)
    atp.flags = (atp.flags | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
                 | lt.torrent_flags.disable_pex) \
        & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused  # fmt: skip
    handle = ses.add_torrent(atp)
    deadline = time.monotonic() + timeout
    connected = 0.0
    try:
        while time.monotonic() < deadline:
            st = handle.status()
            if st.num_seeds or st.total_payload_download:  # small payloads arrive at once
                return True
            if st.num_peers == 0 and time.monotonic() - connected > 1.0:
                handle.connect_peer(("127.0.0.1", port))
                connected = time.monotonic()
            time.sleep(0.05)
        return False
    finally:
        ses.pause()
        ses.remove_torrent(handle)
        del ses


def test_a_running_seeder_follows_the_takedown(
    released: tuple[Workspace, int, str], tmp_path: Path
) -> None:
    ws, _tid, isrc = released
    before = orjson.loads((ws.publish / "torrents.json").read_bytes())
    proc, port, lines = _seed(ws)
    try:
        old_current = {e["display_name"]: e for e in before if not e["obsolete"]}
        assert f"seeding {len(old_current)} torrents" in lines[-1]
        saved = tmp_path / "before"  # publish keeps no .torrent of a withdrawn one
        shutil.copytree(ws.publish / "torrents", saved)
        band1 = [e for e in old_current.values() if e["kind"] == "data" and e["band"] == 1]
        assert all(_offered(saved / Path(e["torrent"]).name, port, tmp_path / "b", timeout=10)
                   for e in band1)  # the victim's folder among them
        _take_down(ws, isrc)
        after = orjson.loads((ws.publish / "torrents.json").read_bytes())
        withdrawn = [e for e in after if e.get("withdrawn")]
        assert {e["role"] for e in withdrawn} == {"aac_meta", "audio", "database"}
        new = [e for e in after if not e["obsolete"] and e["display_name"] not in old_current]
        rebuilt = next(e for e in new if e["kind"] == "data" and e["role"] == "audio")
        old_data = next(e for e in withdrawn if e["role"] == "audio")
        old_torrent = saved / f"{old_data['display_name']}.torrent"
        wanted = [f"stopped seeding {e['display_name']}" for e in withdrawn
                  if e["display_name"] in old_current] + \
            [f"now seeding {e['display_name']}" for e in new]  # fmt: skip
        assert _lines_until(proc, lines, wanted, timeout=20) == [], "".join(lines)
        # a real client gets the rebuilt folder from it, and nothing of the withdrawn one
        libtorrent_download(ws.publish / rebuilt["torrent"], tmp_path / "new",
                            ("127.0.0.1", port), timeout=60)
        assert (tmp_path / "new" / rebuilt["display_name"]).is_dir()
        # and the seeder no longer offers the withdrawn torrent at all (release deleting
        # its payload is not enough: a seeder still holding it answers as a seed, having
        # sent its pieces above), while a torrent the takedown left alone is still offered
        unchanged = next(e for e in after if e["display_name"] in old_current
                         and not e["obsolete"] and e["kind"] == "data")
        assert _offered(ws.publish / unchanged["torrent"], port, tmp_path / "u", timeout=10)
        assert not _offered(old_torrent, port, tmp_path / "o", timeout=3)
        # currently_seeding follows: the withdrawn ones off, the new ones on
        index = {e["display_name"]: e
                 for e in orjson.loads((ws.publish / "torrents.json").read_bytes())}
        assert [e["display_name"] for e in withdrawn if index[e["display_name"]]
                ["currently_seeding"]] == []
        assert all(index[e["display_name"]]["currently_seeding"] for e in new)
        # the seeder deletes nothing: the excluded audio is left for `phono gc`
        assert (ws.audio).is_dir() and any(ws.audio.rglob("*.*"))
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
