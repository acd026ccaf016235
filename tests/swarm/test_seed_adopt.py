"""`phono seed` records what it seeds; `phono seed --adopt` downloads and seeds what needs it.

Real processes, a real tracker (opentracker) and real libtorrent sessions on 127.0.0.1:
the archive's own seeder and a volunteer's; the tracker's counts show both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from phonotheque.catalogue import swarm as swarm_table
from phonotheque.publish.index import read_index
from phonotheque.serve.seeder import Seeder, find_published
from phonotheque.swarm.adopt import AdoptOptions, choose
from phonotheque.swarm.health import HealthOptions, check
from phonotheque.swarm.loopback import free_port
from phonotheque.swarm.seeding import SeedingLog
from phonotheque.torrent import read_torrent, verify_torrent
from phonotheque.workspace import Workspace
from tests.opentracker import opentracker
from tests.swarm.clients import Peer
from tests.swarm.test_health import FAST, LOCAL, hashes, index, released


def _phono(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_seeder_records_currently_seeding_and_upload_totals(
    ws: Workspace, data: Path, tmp_path: Path
) -> None:
    port = free_port()
    targets = released(ws, data, (f"http://127.0.0.1:{port}/announce",))
    with opentracker(tmp_path / "ot", hashes(targets), port):
        items = find_published(ws.torrents, ws.publish)
        first = items[0]
        for run in (1, 2):  # totals add up across runs
            with Seeder(items, LOCAL) as seeder:
                log = SeedingLog(ws)
                # (v1 companions are seeded too; the catalogue records the torrents)
                assert log.start(seeder.status()) == len([i for i in items if not i.companion])
                assert all(e["currently_seeding"] for e in index(ws).values()
                           if not e["obsolete"])
                with Peer(first.torrent, tmp_path / f"down{run}") as peer:
                    peer.wait_seeding(30)
                log.record(seeder.status(), stopped=True)
    size = read_torrent(first.torrent).total_size
    with ws.store() as store:
        by_id = swarm_table.health(store.conn)
        uploaded = {t.name: by_id[t.torrent_id].uploaded for t in swarm_table.scrape_targets(store)
                    if t.torrent_id in by_id}
    assert uploaded[first.torrent.stem] >= 2 * size  # two full downloads served
    assert not any(e["currently_seeding"] for e in index(ws).values())


def test_volunteer_adopts_downloads_and_is_counted(ws: Workspace, data: Path, tmp_path: Path) -> None:
    port = free_port()
    targets = released(ws, data, (f"udp://127.0.0.1:{port}/announce",))
    with opentracker(tmp_path / "ot", hashes(targets), port) as ot:
        ours = _phono("seed", "-w", str(ws.root), "--listen", "127.0.0.1:0", "--no-dht",
                      "--no-lsd", "--no-utp")
        volunteer = None
        try:
            assert ours.stdout is not None
            assert ours.stdout.readline().startswith("seeding ")
            # the seeder records what it seeds once it runs (asynchronously to the tracker)
            _wait(lambda: check(ws, HealthOptions(scrape=FAST)).scraped == len(targets)
                  and all(e["seeders"] == 1 and e["currently_seeding"]
                          for e in index(ws).values()), ws)
            # every current torrent has 1 seeder now: the budget picks by band, then name
            current = sorted((e for e in index(ws).values() if not e["obsolete"]),
                             key=lambda e: (e["band"] is None, e["band"] or 0, e["display_name"]))
            budget = current[0]["data_size"] + current[1]["data_size"]
            expected = {e["display_name"] for e in
                        choose(read_index(ws.publish), AdoptOptions(budget)).chosen}
            assert {current[0]["display_name"], current[1]["display_name"]} <= expected
            home = tmp_path / "volunteer"
            volunteer = _phono("seed", "-w", str(home), "--publish", str(ws.publish), "--adopt",
                               str(budget), "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd",
                               "--no-utp")
            _wait(lambda: check(ws, HealthOptions(scrape=FAST)) is not None and all(
                index(ws)[n]["seeders"] == 2 and index(ws)[n]["completed"] >= 1 for n in expected),
                ws)
        finally:
            rc, out, err = _stop(ours)
            if volunteer is not None:
                vrc, vout, verr = _stop(volunteer)
                assert vrc == 0, verr
                assert "downloading and seeding" in vout
        assert rc == 0, err
        assert ot.udp
    assert {p.name for p in (home / "torrents").iterdir()} == expected
    for name in expected:  # what the volunteer holds is exactly what was published
        report = verify_torrent(read_torrent(ws.publish / "torrents" / f"{name}.torrent"),
                                home / "torrents")
        assert report.ok, report
    with ws.store() as store:
        by_id = swarm_table.health(store.conn)
        names = {t.torrent_id: t.name for t in swarm_table.scrape_targets(store)}
    uploaded = {names[i]: h.uploaded for i, h in by_id.items()}
    assert all(uploaded[n] > 0 for n in expected)  # served to the volunteer, recorded at stop
    assert not any(h.currently_seeding for h in by_id.values())
    assert orjson.loads((ws.publish / "torrents.json").read_bytes())


def _wait(ok: object, ws: Workspace, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ok():  # type: ignore[operator]
        if time.monotonic() > deadline:
            state = {k: (e["seeders"], e["leechers"], e["completed"], e["currently_seeding"])
                     for k, e in index(ws).items()}
            raise AssertionError(f"condition not met in {timeout} s; torrents.json: {state}")
        time.sleep(0.3)
