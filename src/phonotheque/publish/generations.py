"""Publish generations: ``publish/`` changes as a whole, in one atomic step.

``publish/`` is a symbolic link to a *generation* folder, ``.publish/<number>/``.
`phono publish` builds the next generation beside the current one (starting from
hard links to the current one's files, so that what it does not rewrite is
carried over for free), then points ``publish/`` at it with one ``rename`` of a
new link over the old. A reader (``phono serve``, ``phono seed``, a sync to a web
host) therefore sees the old generation or the new one, never a mix; a publish
killed half-way leaves ``publish/`` as it was, and its unfinished folder is
removed by the next run. The generation switched away from is kept, for readers
still busy with it; older ones are removed.

A new workspace, or one made before generations, has a plain ``publish/`` folder:
the first publish removes it if empty, else moves it to ``.publish/legacy``, and
puts the link in its place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from phonotheque.atomic import fsync_dir, temporary_name
from phonotheque.errors import wrap_os_error
from phonotheque.workspace import Workspace

FOLDER = ".publish"  # in the workspace root, beside publish/


def _folder(ws: Workspace) -> Path:
    return ws.root / FOLDER


def _number(p: Path) -> int | None:
    return int(p.name) if p.name.isdigit() else None


def current(ws: Workspace) -> Path | None:
    """The generation ``publish/`` points at (None when it is not a link or missing)."""
    link = ws.publish
    if not link.is_symlink():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


def begin(ws: Workspace) -> Path:
    """A new, unpublished generation folder holding (hard links to) the current files."""
    folder = _folder(ws)
    try:
        folder.mkdir(exist_ok=True)
        numbers = [n for p in folder.iterdir() if (n := _number(p)) is not None]
        new = folder / f"{max(numbers, default=0) + 1:06d}"
        if new.exists():  # cannot be current: the link never points at a new number
            shutil.rmtree(new)
        new.mkdir()
        source = ws.publish if ws.publish.is_dir() else None
        if source is not None:
            _link_tree(source.resolve(), new)
    except OSError as exc:
        raise wrap_os_error(exc, folder) from exc
    return new


def _link_tree(src: Path, dst: Path) -> None:
    for p in sorted(src.rglob("*")):
        target = dst / p.relative_to(src)
        if p.is_dir():
            target.mkdir(exist_ok=True)
        elif p.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(p, target)
            except OSError:  # no hard links here: copy
                shutil.copyfile(p, target)


def switch(ws: Workspace, generation: Path) -> Path | None:
    """Point ``publish/`` at ``generation`` in one atomic rename; durable on return.

    Returns the generation it pointed at before (None for the first publish)."""
    link = ws.publish
    tmp = temporary_name(link)
    relative = os.path.relpath(generation, link.parent)
    previous = current(ws)
    try:
        for p in (generation, *sorted((q for q in generation.rglob("*") if q.is_dir()),
                                      reverse=True)):
            fsync_dir(p)
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(relative, tmp)
        if link.is_dir() and not link.is_symlink():
            # the first publish into a plain folder (a new workspace, or one made
            # before generations): an empty one goes, one with files is kept as a
            # generation (readers see it missing for the instant between the two
            # renames; from now on the switch is a single rename)
            if not any(link.iterdir()):
                link.rmdir()
            else:
                previous = _folder(ws) / "legacy"
                if previous.exists():
                    shutil.rmtree(previous)
                os.rename(link, previous)
        os.replace(tmp, link)
        fsync_dir(link.parent)
    except OSError as exc:
        raise wrap_os_error(exc, link) from exc
    return previous


def cleanup(ws: Workspace, previous: Path | None = None) -> list[Path]:
    """Remove every generation but the current one and ``previous`` (readers may still
    be busy with it), unfinished ones of interrupted publishes included; return them."""
    folder = _folder(ws)
    live = current(ws)
    if live is None or not folder.is_dir():
        return []
    keep = {live, previous.resolve() if previous is not None else live}
    doomed = sorted(p for p in folder.iterdir() if p.resolve() not in keep)
    for p in doomed:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return doomed
