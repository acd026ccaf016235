"""The per-file work: one source file in, one archive file (and patch) out, a record back.

:func:`archive_file` is a pure function of its arguments as far as the catalogue is
concerned: it reads the source, writes content-addressed files under the
workspace's ``audio/`` folder and returns a :class:`FileResult`. It never opens
the catalogue, so it runs unchanged in a local process pool or on a Dask worker
(on shared storage); the coordinator records the results.

Each byte is read once: the source is read into memory once (hashed there, and
for tier ``original`` tagged there); the archive bytes are built in memory,
hashed, written once. ffmpeg reads the source itself (from the page cache).
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from phonotheque.atomic import write_bytes
from phonotheque.audio import encode, reconstruct
from phonotheque.audio import tags as tagmod
from phonotheque.audio.encode import EncodeOptions, Loudness
from phonotheque.audio.files import content_path
from phonotheque.audio.probe import ProbeResult, Refused, check_readable, probe
from phonotheque.audio.tiers import ORIGINAL, REENCODE, decide_tier, extension_for
from phonotheque.errors import PhonoError, StorageError, ToolError

# A decode that stops this far short of the announced duration means a truncated file.
_TRUNCATED_BELOW = 0.9


@dataclass(frozen=True, slots=True)
class AudioOptions:
    """Options of ``phono audio`` (frozen, passed down; no ambient configuration)."""

    encode: EncodeOptions = field(default_factory=EncodeOptions)
    patches: bool = True  # make .zstdpatch files for tier original
    patch_level: int = 1  # zstd level; see reconstruct.py on why 1
    verify_existing: bool = False  # re-hash finished files on a re-run (default: size check)
    retry_errors: bool = False  # re-try tracks whose ledger says error_*
    batch_size: int = 64  # results per catalogue transaction


@dataclass(frozen=True, slots=True)
class WorkItem:
    """Everything a worker needs for one track (picklable; absolute paths)."""

    track_id: int
    source_audio_id: int
    source: str
    planned_tier: str
    workspace: str
    tags: tagmod.TagSet
    options: AudioOptions


@dataclass(slots=True)
class FileResult:
    """What happened to one track. ``status``: ``success``, ``error_<reason>`` or ``fatal``."""

    track_id: int
    source_audio_id: int
    source: str
    status: str
    detail: str = ""
    tier: str | None = None
    path: str | None = None  # relative to the workspace
    container: str | None = None
    codec: str | None = None
    bitrate: int | None = None
    duration_ms: int | None = None
    size: int | None = None
    sha256: str | None = None
    original_sha256: str | None = None
    original_size: int | None = None
    patch_path: str | None = None
    patch_size: int | None = None
    replaygain_gain: float | None = None
    replaygain_peak: float | None = None
    reconstruction: str | None = None  # JSON
    source_duration_ms: int | None = None
    written: bool = False  # False when the file was already in place
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def reason(self) -> str | None:
        return self.status[len("error_"):] if self.status.startswith("error_") else None


def run_item(item: WorkItem) -> FileResult:
    """Executor entry point: never raises; failures come back as data."""
    t0 = time.perf_counter()
    try:
        res = archive_file(
            Path(item.source), Path(item.workspace), item.options, item.tags,
            tier=item.planned_tier, track_id=item.track_id,
            source_audio_id=item.source_audio_id,
        )
    except Refused as exc:
        res = _failed(item, f"error_{exc.reason}", exc.problem)
    except (StorageError, ToolError) as exc:
        res = _failed(item, "fatal", str(exc))
    except PhonoError as exc:
        res = _failed(item, "error_unreadable", exc.problem)
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not stop the run
        res = _failed(item, "error_internal", f"{type(exc).__name__}: {exc}")
    res.seconds = time.perf_counter() - t0
    return res


def _failed(item: WorkItem, status: str, detail: str) -> FileResult:
    return FileResult(item.track_id, item.source_audio_id, item.source, status, detail[:2000])


def archive_file(source: Path, workspace: Path, options: AudioOptions, tags: tagmod.TagSet, *,
                 tier: str, track_id: int = 0, source_audio_id: int = 0) -> FileResult:
    """Archive ``source`` for one track under ``workspace/audio``; return what was made.

    Raises :class:`Refused` for a bad input, :class:`StorageError` when the output
    cannot be written.
    """
    st = check_readable(source)
    data = _read(source)
    if len(data) != st.st_size:
        raise Refused(source, "file changed size while being read", "unreadable")
    src_sha = hashlib.sha256(data).hexdigest()
    info = probe(source)
    decision = decide_tier(tier, info, options.encode.bitrate_bps)
    src_ext = extension_for(info)
    art = _load_art(tags.art_path)
    result = FileResult(
        track_id=track_id, source_audio_id=source_audio_id, source=str(source),
        status="success", tier=decision.tier, original_sha256=src_sha, original_size=len(data),
        source_duration_ms=info.duration_ms,
    )
    if decision.tier == ORIGINAL:
        _keep_original(result, source, data, info, src_ext, workspace, options, tags, art,
                       decision.why)
    else:
        _reencode(result, source, data, info, src_ext, workspace, options, tags, art)
    return result


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except PermissionError as exc:
        raise Refused(path, f"cannot read: {exc.strerror}", "unreadable") from exc
    except OSError as exc:
        raise Refused(path, f"cannot read: {exc.strerror or exc}", "unreadable") from exc


def _load_art(art_path: str | None) -> tagmod.Picture | None:
    if not art_path:
        return None
    try:
        return tagmod.Picture.from_bytes(Path(art_path).read_bytes())
    except OSError:
        return None  # missing art never fails a track; the record says "picture": null


def _check_complete(source: Path, info: ProbeResult, decoded_ms: int | None) -> None:
    if decoded_ms is None or info.duration_ms < 2000:
        return
    if decoded_ms < _TRUNCATED_BELOW * info.duration_ms:
        raise Refused(
            source,
            f"truncated: {decoded_ms / 1000:.1f} s decode of {info.duration_ms / 1000:.1f} s "
            "announced by the header",
            "truncated",
        )


def _loudness_fields(loud: Loudness | None) -> tuple[float | None, float | None, int | None]:
    if loud is None:
        return None, None, None
    return loud.replaygain_gain, loud.replaygain_peak, loud.r128_track_gain


def _tag(buf: io.BytesIO, ext: str, source: Path, tags: tagmod.TagSet,
         art: tagmod.Picture | None) -> tagmod.TagOutcome:
    try:
        return tagmod.write_tags(buf, ext, tags, art)
    except Exception as exc:  # noqa: BLE001 - mutagen raises many types for broken tag blocks
        raise Refused(source, f"tags cannot be parsed or written: {type(exc).__name__}: "
                      f"{exc}", "unparseable") from exc


def _reparse(final: bytes, ext: str, where: Path) -> Any:
    """Parse the finished bytes again: proof that what we write is a valid file."""
    try:
        f = tagmod.load(io.BytesIO(final), ext)
    except Exception as exc:  # noqa: BLE001
        raise Refused(where, f"written file does not re-parse: {exc}", "internal") from exc
    return f


def _store(workspace: Path, kind: str, sha: str, ext: str, data: bytes) -> tuple[str, bool]:
    path = content_path(workspace / "audio", kind, sha, ext)
    rel = path.relative_to(workspace).as_posix()
    try:
        if path.stat().st_size == len(data):
            with open(path, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() == sha:
                    return rel, False  # already in place (e.g. written before a kill)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(path, f"cannot read back: {exc.strerror or exc}") from exc
    write_bytes(path, data)
    return rel, True


def _keep_original(result: FileResult, source: Path, data: bytes, info: ProbeResult, ext: str,
                   workspace: Path, options: AudioOptions, tags: tagmod.TagSet,
                   art: tagmod.Picture | None, why: str) -> None:
    loud: Loudness | None = None
    if options.encode.replaygain:
        run = encode.measure(source, options.encode)
        _check_complete(source, info, run.decoded_ms)
        loud = run.loudness
    gain, peak, r128 = _loudness_fields(loud)
    buf = io.BytesIO(data)
    outcome = _tag(buf, ext, source, tags.with_loudness(gain, peak, r128), art)
    final = buf.getvalue()
    if outcome.family is not None:
        _reparse(final, ext, source)
    sha = hashlib.sha256(final).hexdigest()
    record: dict[str, Any] = {
        "tier_reason": why,
        "tags": {"family": outcome.family, "written": list(outcome.written),
                 "picture": outcome.picture},
    }
    patch_rel: str | None = None
    patch_size: int | None = None
    if final == data:
        record.update(kind="identical", byte_exact=True, changed=[],
                      note="archive file is byte-identical to the source"
                      + ("" if outcome.family else " (container not taggable by mutagen)"))
    elif options.patches and max(len(final), len(data)) <= reconstruct.MAX_PATCH_INPUT:
        patch = reconstruct.make_patch(data, final, level=options.patch_level,
                                       original_sha256=result.original_sha256,
                                       reference_sha256=sha)
        patch_rel, _ = _store(workspace, "patches", sha, reconstruct.PATCH_EXT, patch)
        patch_size = len(patch)
        record.update(kind="zstd-patch-from", byte_exact=True, changed=["tags"],
                      patch=patch_rel, patch_size=patch_size,
                      rebuild="phono audio rebuild FILE PATCH  (or: zstd -d --patch-from=FILE "
                              "PATCH -o ORIGINAL)")
    else:
        record.update(kind="none", byte_exact=False, changed=["tags"],
                      note="no patch (disabled or file above 1 GiB): only tags differ")
    rel, written = _store(workspace, ORIGINAL, sha, ext, final)
    result.path, result.written = rel, written
    result.container, result.codec, result.bitrate = info.container, info.codec, info.bitrate
    result.duration_ms = info.duration_ms
    result.size, result.sha256 = len(final), sha
    result.patch_path, result.patch_size = patch_rel, patch_size
    result.replaygain_gain, result.replaygain_peak = gain, peak
    result.reconstruction = orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def _reencode(result: FileResult, source: Path, data: bytes, info: ProbeResult, src_ext: str,
              workspace: Path, options: AudioOptions, tags: tagmod.TagSet,
              art: tagmod.Picture | None) -> None:
    opts = options.encode
    # Ogg serial from the source hash: deterministic, and distinct between files
    serial = int(result.original_sha256[:8], 16) & 0x7FFFFFFF if result.original_sha256 else 0
    run = encode.transcode(source, opts, serial)
    _check_complete(source, info, run.decoded_ms)
    if not run.data:
        raise Refused(source, "ffmpeg produced no output", "undecodable")
    picture, pic_from = art, "release" if art else None
    if picture is None:
        picture = tagmod.extract_picture(io.BytesIO(data), src_ext)
        pic_from = "embedded" if picture else None
    gain, peak, r128 = _loudness_fields(run.loudness)
    buf = io.BytesIO(run.data)
    outcome = _tag(buf, "opus", source, tags.with_loudness(gain, peak, r128), picture)
    final = buf.getvalue()
    parsed = _reparse(final, "opus", source)
    length_s = float(getattr(parsed.info, "length", 0.0) or 0.0)
    duration_ms = int(round(length_s * 1000)) or info.duration_ms
    sha = hashlib.sha256(final).hexdigest()
    rel, written = _store(workspace, REENCODE, sha, "opus", final)
    # The command without the input path: parameters, not a machine's file layout.
    cmd = list(run.command)
    i = cmd.index("-i")
    args = cmd[1:i] + ["-i", "INPUT"] + cmd[i + 2 : -1] + ["OUTPUT"]
    record = {
        "kind": "transcode",
        "byte_exact": False,
        "note": "lossy re-encode: the source cannot be rebuilt from this file",
        "encoder": "libopus",
        "bitrate": opts.bitrate,
        "vbr": opts.vbr,
        "application": opts.application,
        "compression_level": opts.compression_level,
        "sample_rate": opts.sample_rate,
        "ffmpeg_args": args,
        "tools": encode.tool_versions(opts.ffmpeg),
        "source": {"container": info.container, "codec": info.codec, "bitrate": info.bitrate,
                   "channels": info.channels, "sample_rate": info.sample_rate,
                   "duration_ms": info.duration_ms, "sha256": result.original_sha256,
                   "size": result.original_size},
        "tags": {"family": outcome.family, "written": list(outcome.written),
                 "picture": pic_from if outcome.picture == "added" else None},
        "loudness": ({"integrated_lufs": run.loudness.integrated_lufs,
                      "sample_peak_dbfs": run.loudness.sample_peak_dbfs}
                     if run.loudness else None),
    }
    result.path, result.written = rel, written
    result.container, result.codec = "ogg", "opus"
    result.bitrate = int(len(final) * 8 * 1000 / duration_ms) if duration_ms else None
    result.duration_ms = duration_ms
    result.size, result.sha256 = len(final), sha
    result.replaygain_gain, result.replaygain_peak = gain, peak
    result.reconstruction = orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()
