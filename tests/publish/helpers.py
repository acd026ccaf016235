"""Small helpers shared by the pack and publish tests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def output_hashes(ws_root: Path) -> dict[str, str]:
    """Everything pack and publish wrote: torrents/ and publish/."""
    out = {}
    for sub in ("torrents", "publish"):
        out.update({f"{sub}/{k}": v for k, v in tree_hashes(ws_root / sub).items()})
    return out
