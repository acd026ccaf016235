"""`phono serve` and `phono seed` as a user runs them: real processes, stopped with Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from phonotheque.atomic import write_bytes
from phonotheque.torrent import TorrentOptions, create_torrent


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_prints_url_answers_and_stops_on_ctrl_c(publish_dir: Path, workers: int) -> None:
    proc = _start(["serve", "--publish", str(publish_dir), "--port", "0", "--workers", str(workers)])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "search page: http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        url = line.split("search page: ")[1].split()[0]
        for _ in range(4):
            r = httpx.get(url + "api/isrc/GBAAA9900303", timeout=10)
            assert r.status_code == 200 and r.json()["results"][0]["title"] == "Hey Boy Hey Girl"
        assert "Die Ärzte" in httpx.get(url + "search", params={"q": "arzte"}, timeout=10).text
    finally:
        rc, out, err = _stop(proc, signal.SIGINT)
    assert rc == 0, err
    assert "stopped" in out


def test_serve_without_publish_fails_clearly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from phonotheque.cli import main; main()", "serve", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "no published metadata" in proc.stderr


def test_serve_on_a_busy_port_says_so_once(publish_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", "from phonotheque.cli import main; main()", "serve",
             "--publish", str(publish_dir), "--port", str(port)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr
    # before issue 12: uvicorn's own "ERROR: [Errno 98] ..." line came first
    assert "ERROR" not in proc.stderr and "Errno" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_seed_shows_status_and_stops_cleanly(tmp_path: Path, data: Path) -> None:
    torrents = tmp_path / "ws" / "torrents"
    payload = torrents / "phonotheque-w1-band1"
    payload.mkdir(parents=True)
    for src in sorted((data / "beets").glob("full.*"))[:3]:
        shutil.copyfile(src, payload / src.name)
    info = create_torrent(payload, TorrentOptions(piece_length=32 * 1024, workers=1))
    write_bytes(torrents / "phonotheque-w1-band1.torrent", info.metainfo)
    proc = _start(["seed", "-w", str(tmp_path / "ws"), "--listen", "127.0.0.1:0",
                   "--no-dht", "--no-lsd", "--no-utp"])  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("seeding 1 torrents on 127.0.0.1:"), line
    rc, out, err = _stop(proc, signal.SIGTERM)
    assert rc == 0, err
    assert "phonotheque-w1-band1" in out and "stopped: 1 torrents" in out
    assert sorted(p.name for p in torrents.iterdir()) == [
        "phonotheque-w1-band1", "phonotheque-w1-band1.torrent",
    ]  # nothing written next to the data  # fmt: skip
