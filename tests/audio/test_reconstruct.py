"""zstd patch-from patches: round trip, interoperability with the zstd CLI, refusal."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from phonotheque.audio.reconstruct import apply_patch, make_patch, read_header, rebuild
from phonotheque.audio.tags import TagSet, write_tags
from phonotheque.errors import IntegrityError

from ..require import require_tool


def _pair(data: Path, tmp_path: Path) -> tuple[Path, Path, bytes]:
    original = (data / "mutagen" / "silence-44-s.flac").read_bytes()
    buf = io.BytesIO(original)
    write_tags(buf, "flac", TagSet(title="x" * 5000, artist="y"), None)
    archive = tmp_path / "archive.flac"
    archive.write_bytes(buf.getvalue())
    patch = tmp_path / "p.zstdpatch"
    patch.write_bytes(make_patch(original, buf.getvalue()))
    return archive, patch, original


def test_round_trip_and_header(data: Path, tmp_path: Path) -> None:
    archive, patch, original = _pair(data, tmp_path)
    assert archive.read_bytes() != original
    assert patch.stat().st_size < 2000 < len(original)  # tags only: a tiny patch
    h = read_header(patch.read_bytes())
    assert h.original_sha256 == hashlib.sha256(original).hexdigest()
    assert h.reference_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    rep = rebuild(archive, patch, tmp_path / "out.flac")
    assert rep.verified and (tmp_path / "out.flac").read_bytes() == original


def test_zstd_cli_reads_our_patch_and_we_read_its(data: Path, tmp_path: Path) -> None:
    require_tool("zstd")
    archive, patch, original = _pair(data, tmp_path)
    out = tmp_path / "cli.flac"
    subprocess.run(["zstd", "-q", "-d", f"--patch-from={archive}", str(patch), "-o", str(out)],
                   check=True)
    assert out.read_bytes() == original
    src = tmp_path / "orig.flac"
    src.write_bytes(original)
    cli_patch = tmp_path / "cli.zstdpatch"
    subprocess.run(["zstd", "-q", f"--patch-from={archive}", str(src), "-o", str(cli_patch)],
                   check=True)
    assert apply_patch(archive.read_bytes(), cli_patch.read_bytes()) == original
    # no header in a CLI patch: rebuild can still check a hash given explicitly
    rep = rebuild(archive, cli_patch, tmp_path / "x.flac",
                  hashlib.sha256(original).hexdigest())
    assert rep.verified


def test_large_file_patch(tmp_path: Path) -> None:
    # 40 MiB of incompressible "audio" with a changed header: the window must cover both
    import os

    body = os.urandom(40 << 20)
    original = b"HEADER-A" + body
    archive = b"HEADER-B-LONGER" + body
    patch = make_patch(original, archive)
    assert len(patch) < 20_000  # ~4.7 KB: a few bytes per 128 KiB block
    assert apply_patch(archive, patch) == original


def test_wrong_reference_or_hash_refused(data: Path, tmp_path: Path) -> None:
    archive, patch, _ = _pair(data, tmp_path)
    other = tmp_path / "other.flac"
    other.write_bytes((data / "beets" / "full.flac").read_bytes())
    with pytest.raises(IntegrityError, match="not the file this patch"):
        rebuild(other, patch, tmp_path / "o.flac")
    with pytest.raises(IntegrityError, match="does not match expected"):
        rebuild(archive, patch, tmp_path / "o.flac", expected_sha256="0" * 64)
    assert not (tmp_path / "o.flac").exists()
