"""Every audio file in tests/data through the worker: no crash, originals rebuild exactly.

The corpus holds ~200 real files in ~30 containers, many deliberately malformed.
Each one must come back as ``success`` or a classified ``error_<reason>``, never
``error_internal`` (a bug) nor ``fatal``; each kept original must rebuild from its
patch byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phonotheque.audio import AudioOptions, TagSet, WorkItem, rebuild, run_item

KNOWN = {"success", "error_no_audio", "error_truncated", "error_undecodable",
         "error_zero_duration", "error_unparseable", "error_unreadable"}


@pytest.mark.parametrize("folder", ["beets", "mutagen", "picard"])
def test_corpus(folder: str, data: Path, tmp_path: Path) -> None:
    files = sorted(p for p in (data / folder).iterdir() if p.is_file())
    tags = TagSet(title="T", artist="A", album="B", tracknumber=1, isrcs=("GBAYE0601498",),
                  art_path=str(data / "beets" / "image-2x3.jpg"))
    seen = set()
    ok = 0
    for f in files:
        res = run_item(WorkItem(1, 1, str(f), "original", str(tmp_path), tags, AudioOptions()))
        seen.add(res.status)
        assert res.status in KNOWN, (f.name, res.status, res.detail)
        if res.ok:
            ok += 1
            assert res.path and res.sha256 and res.original_sha256
            if res.patch_path:
                out = tmp_path / "rebuilt"
                rebuild(tmp_path / res.path, tmp_path / res.patch_path, out,
                        res.original_sha256)
                assert out.read_bytes() == f.read_bytes(), f.name
                os.unlink(out)
    assert ok >= len(files) // 3 and "success" in seen
