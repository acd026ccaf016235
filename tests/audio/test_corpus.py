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


# Every file that is not archived, and why: each outcome is exact, so a file that starts
# or stops being archived (a decoder or probe change) shows up here by name.
NOT_ARCHIVED: dict[str, dict[str, str]] = {
    "beets": {
        "empty.dsf": "error_undecodable",
        "empty.wma": "error_undecodable",
        "emptylist.mp3": "error_truncated",
        "full.wma": "error_undecodable",
        "image-2x3.jpg": "error_no_audio",
        "image-2x3.png": "error_no_audio",
        "image-2x3.tiff": "error_no_audio",
        "image.wma": "error_undecodable",
        "no_ext_not_music": "error_zero_duration",
        "oldape.ape": "error_undecodable",
        "only-magic-bytes.jpg": "error_no_audio",
        "pure.wma": "error_undecodable",
        "unparseable.dsf": "error_undecodable",
        "unparseable.wma": "error_undecodable",
    },
    "mutagen": {
        "106-invalid-streaminfo.flac": "error_undecodable",
        "106-short-picture-block-size.flac": "error_undecodable",
        "145-invalid-item-count.apev2": "error_undecodable",
        "2822400-1ch-0s-silence.dff": "error_zero_duration",
        "2822400-1ch-0s-silence.dsf": "error_undecodable",
        "52-overwritten-metadata.flac": "error_undecodable",
        "52-too-short-block-size.flac": "error_undecodable",
        "5644800-2ch-s01-silence-dst.dff": "error_undecodable",
        "64bit.mp4": "error_no_audio",
        "adif.aac": "error_undecodable",
        "almostempty.mpc": "error_undecodable",
        "apev2-lyricsv2.mp3": "error_truncated",
        "bad-POPM-frame.mp3": "error_undecodable",
        "brokentag.apev2": "error_undecodable",
        "empty.ofr": "error_undecodable",
        "empty.ofs": "error_undecodable",
        "empty.spx": "error_undecodable",
        "emptyfile.mp3": "error_zero_duration",
        "example.opus": "error_truncated",
        "flac_application.flac": "error_undecodable",
        "has-tags.tak": "error_undecodable",
        "id3v23_unsynch.id3": "error_undecodable",
        "id3v24_extended_header.id3": "error_undecodable",
        "image.jpg": "error_no_audio",
        "lame397v9short.mp3": "error_zero_duration",
        "mac-390-hdr.ape": "error_undecodable",
        "multiplexed.spx": "error_undecodable",
        "nero-chapters.m4b": "error_zero_duration",
        "oldtag.apev2": "error_undecodable",
        "ooming-header.flac": "error_undecodable",
        "sample.mid": "error_undecodable",
        "sample.oggtheora": "error_no_audio",
        "sample_bitrate.oggtheora": "error_undecodable",
        "sample_length.oggtheora": "error_truncated",
        "silence-2s-44100-16.ofr": "error_undecodable",
        "silence-2s-44100-16.ofs": "error_undecodable",
        "silence-44-s.tak": "error_undecodable",
        "sv4_header.mpc": "error_undecodable",
        "sv5_header.mpc": "error_undecodable",
        "too-short.mp3": "error_undecodable",
        "truncated-64bit.mp4": "error_undecodable",
        "variable-block.flac": "error_truncated",
        "vbri.mp3": "error_truncated",
        "with-id3.dsf": "error_zero_duration",
        "without-id3.dsf": "error_undecodable",
    },
    "picard": {
        "mb-vp8.webp": "error_no_audio",
        "mb-vp8l.webp": "error_no_audio",
        "mb-vp8x.webp": "error_no_audio",
        "test-dst.dff": "error_undecodable",
        "test.asf": "error_zero_duration",
        "test.mid": "error_undecodable",
        "test.ofr": "error_undecodable",
        "test.ofs": "error_undecodable",
        "test.spx": "error_undecodable",
        "test.tak": "error_undecodable",
        "test.wmv": "error_zero_duration",
    },
}
ARCHIVED = {"beets": 59, "mutagen": 55, "picard": 25}  # the rest of each folder


@pytest.mark.parametrize("folder", ["beets", "mutagen", "picard"])
def test_corpus(folder: str, data: Path, tmp_path: Path) -> None:
    files = sorted(p for p in (data / folder).iterdir() if p.is_file())
    tags = TagSet(title="T", artist="A", album="B", tracknumber=1, isrcs=("GBAYE0601498",),
                  art_path=str(data / "beets" / "image-2x3.jpg"))
    outcomes: dict[str, str] = {}
    for f in files:
        res = run_item(WorkItem(1, 1, str(f), "original", str(tmp_path), tags, AudioOptions()))
        outcomes[f.name] = res.status
        assert res.status in KNOWN, (f.name, res.status, res.detail)
        assert res.ok == (res.status == "success"), (f.name, res.status)
        if res.ok:
            assert res.path and res.sha256 and res.original_sha256
            if res.patch_path:
                out = tmp_path / "rebuilt"
                rebuild(tmp_path / res.path, tmp_path / res.patch_path, out,
                        res.original_sha256)
                assert out.read_bytes() == f.read_bytes(), f.name
                os.unlink(out)
        else:
            assert res.detail, f.name  # every refusal says why
    expected = {f.name: NOT_ARCHIVED[folder].get(f.name, "success") for f in files}
    assert {n: s for n, s in outcomes.items() if s != expected[n]} == {}
    assert set(NOT_ARCHIVED[folder]) <= set(outcomes)  # no stale entry in the table
    assert list(outcomes.values()).count("success") == ARCHIVED[folder]
