"""Audio tiers: keep originals byte-for-byte (tags aside), re-encode the tail to Opus.

Public API::

    run_audio(ws, options, executor, on_progress) -> AudioReport   # the stage
    archive_file(source, workspace, options, tags, tier=...) -> FileResult  # one file
    rebuild(archive_file, patch_file, out) -> RebuildReport        # undo the tagging
"""

from phonotheque.audio.encode import EncodeOptions
from phonotheque.audio.reconstruct import RebuildReport, rebuild
from phonotheque.audio.stage import AudioReport, run_audio
from phonotheque.audio.tags import Picture, TagSet
from phonotheque.audio.worker import AudioOptions, FileResult, WorkItem, archive_file, run_item

__all__ = [
    "AudioOptions",
    "AudioReport",
    "EncodeOptions",
    "FileResult",
    "Picture",
    "RebuildReport",
    "TagSet",
    "WorkItem",
    "archive_file",
    "rebuild",
    "run_audio",
    "run_item",
]
