"""Content-addressed paths and quarantine for the audio stage.

Every output is written with :mod:`phonotheque.atomic` (temporary name in its final
folder, fsync, rename); a crash leaves at worst a temporary, which the next run
sweeps before starting. Output paths are made from hashes only, so no tag text (however
hostile: ``../``, NUL, 300-byte names, look-alike characters) ever reaches a path.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from phonotheque.atomic import atomic_write, write_bytes


def content_path(root: Path, kind: str, sha256: str, ext: str) -> Path:
    """``root/<kind>/<sha256[:2]>/<sha256>.<ext>``."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not re.fullmatch(r"[a-z0-9]{1,10}", ext):
        raise ValueError(f"bad content address {sha256!r}.{ext!r}")
    return root / kind / sha256[:2] / f"{sha256}.{ext}"


def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe rendering of ``text``: ASCII letters, digits, ``._-`` only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "file"
    return name[:limit]


def quarantine(quarantine_dir: Path, track_id: int, source: Path | None, reason: str,
               detail: str) -> Path:
    """Copy ``source`` (if it is a regular file) into quarantine with a reason file.

    Names are ``<track_id>-<safe source name>``; the reason file is
    ``<name>.reason.txt``. Idempotent: a re-run overwrites the same two files.
    """
    base = f"{track_id}-{safe_name(source.name if source else 'no-source')}"
    target = quarantine_dir / base
    text = f"track_id: {track_id}\nsource: {source}\nreason: error_{reason}\ndetail: {detail}\n"
    if source is not None and source.is_file() and not target.exists():
        try:
            src = open(source, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            # an unreadable source cannot be copied: the reason file says why
            text += f"copy: not copied ({exc.strerror or exc})\n"
        else:
            with src, atomic_write(target) as out:
                shutil.copyfileobj(src, out)
    write_bytes(quarantine_dir / f"{base}.reason.txt", text.encode("utf-8", "replace"))
    return target
