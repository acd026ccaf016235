"""Issue 12 §6 "small ones": what a script calling `phono` sees for wrong arguments."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from click.testing import CliRunner

from phonotheque.cli import main
from tests import sigint

PHONO = str(Path(__file__).parents[1] / ".venv" / "bin" / "phono")


def test_build_names_an_unknown_source_kind_and_makes_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    r = CliRunner().invoke(main, ["build", "-w", str(ws), f"foo:{tmp_path}"])
    assert r.exit_code == 2, r.output
    # before: "foo:/tmp/...: no such file or folder"
    assert "unknown source kind 'foo'" in r.output and "musicbrainz" in r.output
    assert not ws.exists()


def test_build_with_a_missing_source_makes_no_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    r = CliRunner().invoke(main, ["build", "-w", str(ws), f"tags:{tmp_path / 'nowhere'}"])
    assert r.exit_code == 2, r.output
    assert "no such file or folder" in r.output and "nowhere" in r.output
    assert not ws.exists()  # before: an empty workspace was left behind


def test_negative_worker_counts_are_refused(tmp_path: Path) -> None:
    for args in (["build", "-w", str(tmp_path / "ws"), str(tmp_path)],
                 ["audio", "-w", str(tmp_path)], ["pack", "-w", str(tmp_path)]):
        r = CliRunner().invoke(main, [*args, "--workers", "-3"])
        assert r.exit_code == 2, (args, r.output)
        assert "-3" in r.output and "0<=x<=1024" in r.output.replace(" ", ""), r.output
    assert not (tmp_path / "ws").exists()


def _phono(*args: str, interval: str = "0.2") -> subprocess.CompletedProcess[str]:
    """`phono` as cron or a pipe runs it: no terminal, no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PHONO_PROGRESS")}
    env["PHONO_PROGRESS_INTERVAL"] = interval
    return subprocess.run([PHONO, *args], capture_output=True, text=True, env=env, check=False)


def test_piped_output_is_never_wrapped(tmp_path: Path) -> None:
    # Before issue 12: rich wrapped at 80 columns off a terminal, splitting the magnet link
    # (and long paths, table rows) over several lines.
    folder = tmp_path / ("a folder with a rather long name, as albums have " * 3).strip()
    folder.mkdir()
    (folder / "track.flac").write_bytes(b"x" * 5000)
    tracker = "http://127.0.0.1:6969/announce?" + "k=v&" * 30
    out = tmp_path / "t.torrent"
    made = _phono("torrent", "create", str(folder), "-o", str(out), "--tracker", tracker)
    assert made.returncode == 0, made.stderr
    info = _phono("torrent", "info", str(out))
    assert info.returncode == 0, info.stderr
    magnet = next(line for line in info.stdout.splitlines() if "magnet:?" in line)
    assert magnet.split()[1].startswith("magnet:?xt=urn:btih:")
    assert magnet.rstrip().endswith(quote(tracker, safe=""))  # the whole link on one line
    assert any(line.split()[1:] == [tracker] for line in info.stdout.splitlines()
               if line.split()[:1] == ["tracker"])
    bad = _phono("torrent", "create", str(folder), "-o", str(out), "--workers", "-3")
    assert bad.returncode == 2 and "-3" in bad.stderr


JSON_KEYS = {"command", "schema", "exit_code", "problems", "report"}


def _json(*args: str, interval: str = "0.2") -> tuple[int, dict[str, Any]]:
    run = _phono(*args, "--json", interval=interval)
    doc = orjson.loads(run.stdout)  # stdout holds the one document and nothing else
    assert set(doc) == JSON_KEYS, doc.keys()
    assert doc["schema"] == 1 and doc["exit_code"] == run.returncode, (doc, run.stderr)
    doc["stderr"] = run.stderr
    return run.returncode, doc


# 12:34:56 audio: 3/11 files (27%) 4.1 files/s ETA 0:00:02 elapsed 0:00:01 [errors 0, ...]
PLAIN_LINE = re.compile(r"^\d\d:\d\d:\d\d audio: \d+/\d+ files \(\d+%\) [\d.,]+ files/s "
                        r"ETA \d+:\d\d:\d\d elapsed \d+:\d\d:\d\d \[errors \d+", re.M)


def test_every_stage_command_speaks_one_json_shape(tmp_path: Path, data: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    sounds = sorted((data / "debian-sounds" / "freedesktop-stereo").glob("a*.oga"))[:6]
    for sound in sounds:
        shutil.copy(sound, music / sound.name)
    (music / "broken.oga").write_bytes(b"OggS")  # refused at ingest: exit 10, said so
    ws = str(tmp_path / "ws")
    # PHONO_PROGRESS_INTERVAL=0: a line for every event. With an interval, whether the
    # audio stage lasts one is the machine's speed (six short files are kept as they are,
    # often in under 0.2 s), and a stage shorter than an interval rightly prints no rate.
    code, doc = _json("build", "-w", ws, f"tags:{music}", interval="0")
    assert code == 10 and doc["command"] == "build" and "1 inputs rejected" in doc["problems"]
    stages = {s["name"]: s for s in doc["report"]["stages"]}
    assert list(stages) == ["ingest", "select", "audio", "pack", "publish"]
    # no terminal: plain progress lines on stderr with counts, rate and ETA (before
    # issue 12: nothing at all)
    assert PLAIN_LINE.search(doc["stderr"]), doc["stderr"]
    assert stages["audio"]["report"]["by_tier"] and stages["ingest"]["report"][0]["kind"] == "tags"
    code, doc = _json("ingest", "tags", "-w", ws, str(music))
    assert code == 0 and doc["command"] == "ingest tags" and doc["problems"] == ""
    assert doc["report"]["rejected"] == 1 and doc["report"]["new_rejects"] == 0
    code, doc = _json("audio", "-w", ws, "--workers", "0")
    assert code == 0 and doc["report"]["already_done"] == len(sounds)
    code, doc = _json("pack", "-w", ws)
    assert code == 0 and doc["report"]["new_folders"] == []
    code, doc = _json("publish", "-w", ws)
    assert code == 0 and doc["report"]["current"] >= 1
    code, doc = _json("release", "-w", ws)
    assert code == 0 and doc["report"]["wave"] is None
    assert _phono("exclude", "add", "-w", ws, "--isrc", "GBAYE0000351",
                  "--reason", "test").returncode == 0
    code, doc = _json("exclude", "list", "-w", ws)
    assert code == 0
    assert [(e["kind"], e["value"]) for e in doc["report"]["exclusions"]] == [
        ("isrc", "GBAYE0000351")]


def test_ctrl_c_inside_a_duckdb_query_is_an_interruption_not_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C while a columnar stage runs a DuckDB query (seen in `phono ingest
    musicbrainz` on a duckdb workspace) surfaces as DuckDB's RuntimeError("Query
    interrupted") raised from the KeyboardInterrupt: it was a traceback and exit 1,
    where an interruption in Python code says "interrupted; re-run" and exits 130.

    And it takes effect at once. DuckDB's Python client raises that error as soon as
    the main thread sees the signal, but never tells DuckDB: a task of the query running
    in one of DuckDB's worker threads ran on to its end, and the ROLLBACK and close()
    waited for it, deaf to any later Ctrl-C. With a one-task query (a range()) that was
    about one run in two (whenever a worker took the task); with a query of several tasks
    (a parallel scan, here on two threads), every run: exit 130 came 27-37 s late.

    In a child process of its own, SIGINT unblocked and Python's own handler put back (a
    child inherits its parent's signal mask and ignored signals; in-process, in a suite
    worker, the signal did not stop the query for six minutes)."""

    code = (
        "import signal, sqlite3, sys\n"
        "from pathlib import Path\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # as on a terminal\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from phonotheque.catalogue import columnar\n"
        "from phonotheque.cli._common import handle_errors\n"
        "d = Path(sys.argv[1])\n"
        "sqlite3.connect(d / 'c.sqlite').execute('CREATE TABLE track(id INTEGER)')\n"
        "def stage():\n"
        "    con = columnar.connect(d / 'c.sqlite', temp_directory=d / 'tmp', threads=2)\n"
        "    try:\n"
        "        con.execute('CREATE TEMP TABLE t AS SELECT i FROM range(2000000) t(i)')\n"
        "        with columnar.transaction(con):\n"
        "            print('ready', flush=True)\n"
        "            # minutes of CPU on any machine: only an interruption ends it in time\n"
        "            con.execute('SELECT count(*) FROM t, range(100000) r(j) '\n"
        "                        'WHERE (i + j) % 7 = 3')\n"
        "    finally:\n"
        "        con.close()\n"
        "handle_errors(stage)()\n")
    rc, err, took = sigint.interrupt_child([code, str(tmp_path)])  # inside the query
    sigint.assert_interrupted(rc, err)
    assert took < 5, took


def test_columnar_ctrl_c_hook_lives_only_while_a_connection_does(tmp_path: Path) -> None:
    """What lets Ctrl-C interrupt DuckDB's worker threads (a SIGINT handler of columnar's)
    is there only while a connection or cursor is open, and only over Python's default
    handler: then the default handler is back (asyncio.run, for one, looks for it), and
    a handler of someone else's (uvicorn's, `phono seed`'s) is left alone."""
    import sys

    code = (
        "import signal, sqlite3, sys\n"
        "from pathlib import Path\n"
        "from phonotheque.catalogue import columnar\n"
        "d = Path(sys.argv[1])\n"
        "sqlite3.connect(d / 'c.sqlite').execute('CREATE TABLE track(id INTEGER)')\n"
        "def opened():\n"
        "    return columnar.connect(d / 'c.sqlite', temp_directory=d / 'tmp')\n"
        "def default():\n"
        "    return signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "con = opened()\n"
        "cur = columnar.cursor(con)\n"
        "seen = [default()]\n"
        "con.close()\n"
        "del con\n"
        "seen.append(default())  # the cursor is still there\n"
        "del cur\n"
        "seen.append(default())\n"
        "def mine(signum, frame): pass\n"
        "signal.signal(signal.SIGINT, mine)\n"
        "con = opened()\n"
        "seen.append(signal.getsignal(signal.SIGINT) is mine)\n"
        "print(seen)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, False, True, True]", done.stdout


def test_json_stdout_stays_json_with_forced_progress_bars(tmp_path: Path) -> None:
    """PHONO_PROGRESS=1 (bars drawn off a terminal) left `select --json`, `health --json`
    and `torrent verify --json` printing their rich bar on stdout before the document, on
    a columnar workspace as on a SQLite one; the stage commands (`build`, `ingest`, `pack`,
    ...) already draw none with --json."""
    demo = Path(__file__).resolve().parents[1] / "src" / "phonotheque" / "demo_data"
    ws = str(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PHONO_PROGRESS"] = "1"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PHONO, *args], capture_output=True, text=True, env=env,
                              check=False)

    assert run("init", ws, "--engine", "duckdb").returncode == 0
    assert run("ingest", "musicbrainz", "-w", ws, str(demo / "musicbrainz")).returncode == 0
    folder = tmp_path / "t"
    folder.mkdir()
    shutil.copy(demo / "audio" / "freedesktop" / "Bell.oga", folder / "Bell.oga")
    assert run("torrent", "create", str(folder), "-o", str(tmp_path / "t.torrent")).returncode == 0
    for args in (["select", "-w", ws], ["health", "-w", ws],
                 ["torrent", "verify", str(tmp_path / "t.torrent"), str(tmp_path)]):
        done = run(*args, "--json")
        assert done.returncode == 0, (args, done.stderr)
        assert isinstance(orjson.loads(done.stdout), dict), (args, done.stdout[:300])
