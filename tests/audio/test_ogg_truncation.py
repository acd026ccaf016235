"""A cut-short Ogg file is refused as truncated and quarantined, not archived (issue 12 §4).

ffmpeg reads an Ogg file's duration from its last page, so the cut file announces
the length it still has; the end-of-stream page is what tells. oggz-validate is
the independent judge of which files are whole.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from phonotheque.audio import AudioOptions, run_audio
from phonotheque.audio.probe import Refused, probe
from phonotheque.executors import InlineExecutor
from phonotheque.workspace import Workspace

from ..require import require_tool
from .conftest import Entry, add_tracks


def _oggz_valid(path: Path) -> bool:
    require_tool("oggz-validate")
    return subprocess.run(["oggz-validate", str(path)], capture_output=True).returncode == 0


def _cuts(src: Path, tmp_path: Path) -> dict[str, Path]:
    raw = src.read_bytes()
    # at a page boundary: where the third-last page starts (no partial page left)
    boundary = raw.rfind(b"OggS", 0, raw.rfind(b"OggS", 0, raw.rfind(b"OggS")))
    out = {}
    for name, size in (("sixth", len(raw) // 6), ("boundary", boundary)):
        p = tmp_path / f"{name}-{src.name}"
        p.write_bytes(raw[:size])
        out[name] = p
    return out


@pytest.mark.parametrize("name", ["debian-sounds/freedesktop-stereo/alarm-clock-elapsed.oga",
                                  "beets/full.opus", "mutagen/empty.oggflac"])
def test_cut_ogg_is_refused_as_truncated(data: Path, tmp_path: Path, name: str) -> None:
    whole = data / name
    assert _oggz_valid(whole)
    probe(whole)  # the whole file passes
    for cut in _cuts(whole, tmp_path).values():
        if cut.stat().st_size < 200:
            continue  # too little left to be taken for audio at all
        assert not _oggz_valid(cut), cut.name
        with pytest.raises(Refused) as exc:
            probe(cut)
        assert exc.value.reason in ("truncated", "undecodable", "zero_duration"), cut.name
        if exc.value.reason != "truncated":
            continue
        assert "no end-of-stream flag" in exc.value.problem


def test_trailing_bytes_after_the_last_page_are_not_a_cut(data: Path, tmp_path: Path) -> None:
    src = data / "debian-sounds/freedesktop-stereo/alarm-clock-elapsed.oga"
    padded = tmp_path / "padded.oga"
    padded.write_bytes(src.read_bytes() + b"TAG" + b"\0" * 125)  # an ID3v1 tag some taggers add
    assert probe(padded).container == "ogg"


def test_truncated_ogg_original_is_quarantined(ws: Workspace, data: Path, tmp_path: Path) -> None:
    src = data / "debian-sounds/freedesktop-stereo/alarm-clock-elapsed.oga"
    cut = tmp_path / "cut.oga"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 6])
    ids = add_tracks(ws, [Entry(cut, "original"), Entry(src, "original")])
    report = run_audio(ws, AudioOptions(), InlineExecutor())
    with ws.store(readonly=True) as s:
        led = dict(s.conn.execute("SELECT track_id, status FROM ledger").fetchall())
        archived = s.scalar("SELECT count(*) FROM audio_file WHERE track_id = ?", (ids[0],))
    assert led[ids[0]] == "error_truncated" and led[ids[1]] == "success"
    assert archived == 0 and report.succeeded == 1
    reason = (ws.quarantine / f"{ids[0]}-cut.oga.reason.txt").read_text()
    assert "error_truncated" in reason and "no end-of-stream flag" in reason
    assert (ws.quarantine / f"{ids[0]}-cut.oga").read_bytes() == cut.read_bytes()
