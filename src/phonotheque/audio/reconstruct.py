"""Reconstruction patches: rebuild an original's exact bytes from its archive file.

Tier ``original`` changes only tags, so the source differs from the archive file
in a few kilobytes. A ``.zstdpatch`` is the source compressed by zstd with the
archive file as *prefix* (zstd's "patch-from" mode): the archive bytes act as
already-seen history, every audio frame becomes one long match, and the patch
stays tiny.

Format: one zstd *skippable frame* (magic ``0x184D2A5E``) holding a JSON header
(``original_sha256``, ``original_size``, ``reference_sha256``), then one ordinary
zstd frame (with content checksum). The reference CLI reads it as is, skipping
the header frame::

    zstd -d --patch-from=ARCHIVE_FILE PATCH -o ORIGINAL

and ``zstd --patch-from=ARCHIVE ORIGINAL -o PATCH`` patches (without our header)
decode here too: both sides use the reference as a raw-content prefix
(pyzstd ``ZstdDict(ref, is_raw=True).as_prefix``), which is what the CLI does.
The window covers reference + source, so files up to about 1 GiB each are
supported (zstd's 2 GiB window limit); larger ones get no patch.

Level 1 with long-distance matching is the default on measurement: a re-tagged
3-minute FLAC (14 MB) gives a 1.6 KB patch in 10 ms at level 1, but 21 KB at
level 3 (its match finder splits the long matches LDM finds) and 1.2 KB in 1.9 s
at level 19.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import orjson

from phonotheque.errors import InputError, IntegrityError, wrap_os_error

_SKIPPABLE_MAGIC = 0x184D2A5E
_MAX_WINDOW_LOG = 31
MAX_PATCH_INPUT = (1 << 30) - (1 << 20)  # reference and source each below ~1 GiB
PATCH_EXT = "zstdpatch"


@dataclass(frozen=True, slots=True)
class PatchHeader:
    original_sha256: str | None
    original_size: int | None
    reference_sha256: str | None


def _window_log(total: int) -> int:
    return min(_MAX_WINDOW_LOG, max(10, (total + 1).bit_length()))


def make_patch(original: bytes, reference: bytes, *, level: int = 1,
               original_sha256: str | None = None,
               reference_sha256: str | None = None) -> bytes:
    """A patch that turns ``reference`` back into ``original``."""
    import pyzstd

    if len(original) > MAX_PATCH_INPUT or len(reference) > MAX_PATCH_INPUT:
        raise InputError("patch", "inputs above 1 GiB are not supported by zstd patch-from")
    header = orjson.dumps(
        {
            "format": "phonotheque-zstdpatch-1",
            "original_sha256": original_sha256 or hashlib.sha256(original).hexdigest(),
            "original_size": len(original),
            "reference_sha256": reference_sha256 or hashlib.sha256(reference).hexdigest(),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    prefix = pyzstd.ZstdDict(reference, is_raw=True).as_prefix
    body = pyzstd.compress(
        original,
        {
            pyzstd.CParameter.compressionLevel: level,
            pyzstd.CParameter.windowLog: _window_log(len(original) + len(reference)),
            pyzstd.CParameter.enableLongDistanceMatching: 1,
            pyzstd.CParameter.checksumFlag: 1,
        },
        zstd_dict=prefix,
    )
    return struct.pack("<II", _SKIPPABLE_MAGIC, len(header)) + header + body


def read_header(patch: bytes) -> PatchHeader:
    """Our JSON header, or an empty one for a plain ``zstd --patch-from`` patch."""
    if len(patch) >= 8:
        magic, size = struct.unpack("<II", patch[:8])
        if magic == _SKIPPABLE_MAGIC:
            try:
                meta = orjson.loads(patch[8 : 8 + size])
            except orjson.JSONDecodeError:
                meta = {}
            return PatchHeader(meta.get("original_sha256"), meta.get("original_size"),
                               meta.get("reference_sha256"))
    return PatchHeader(None, None, None)


def apply_patch(reference: bytes, patch: bytes) -> bytes:
    """The original bytes (zstd checks its own content checksum)."""
    import pyzstd

    prefix = pyzstd.ZstdDict(reference, is_raw=True).as_prefix
    try:
        return pyzstd.decompress(
            patch, zstd_dict=prefix,
            option={pyzstd.DParameter.windowLogMax: _MAX_WINDOW_LOG},
        )
    except pyzstd.ZstdError as exc:
        raise IntegrityError("patch", f"does not apply to this file: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RebuildReport:
    output: Path
    size: int
    sha256: str
    expected_sha256: str | None
    verified: bool


def rebuild(archive_file: Path, patch_file: Path, out: Path,
            expected_sha256: str | None = None) -> RebuildReport:
    """Re-create the original of ``archive_file`` at ``out``; check its sha256.

    The expected hash is ``expected_sha256`` if given, else the one in the patch
    header. A mismatch raises :class:`IntegrityError` and leaves no output.
    """
    from phonotheque.atomic import write_bytes

    try:
        reference = Path(archive_file).read_bytes()
    except OSError as exc:
        raise wrap_os_error(exc, archive_file) from exc
    try:
        patch = Path(patch_file).read_bytes()
    except OSError as exc:
        raise wrap_os_error(exc, patch_file) from exc
    header = read_header(patch)
    if header.reference_sha256:
        ref_sha = hashlib.sha256(reference).hexdigest()
        if ref_sha != header.reference_sha256:
            raise IntegrityError(
                archive_file,
                f"is not the file this patch was made against (sha256 {ref_sha}, "
                f"patch expects {header.reference_sha256})",
            )
    data = apply_patch(reference, patch)
    digest = hashlib.sha256(data).hexdigest()
    expected = expected_sha256 or header.original_sha256
    if expected and digest != expected:
        raise IntegrityError(out, f"rebuilt sha256 {digest} does not match expected {expected}")
    write_bytes(Path(out), data)
    return RebuildReport(Path(out), len(data), digest, expected, expected is not None)
