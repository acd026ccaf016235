"""A running ``phono seed`` follows each new publish, as ``phono serve`` does.

`phono publish` and `phono release` switch ``publish/`` to a new generation in one
atomic step (:mod:`phonotheque.publish.generations`). A takedown only takes effect
on the seeder if it notices: :class:`PublishFollower` checks, at every tick of the
seed loop, what identifies the published index (the folder ``publish/`` resolves to
and the ``torrents.json`` file's inode, time and size: a stat, no reading), and when
that changed lists the current torrents again and has the seeder seed exactly
those (:meth:`~phonotheque.serve.seeder.Seeder.follow`).
"""

from __future__ import annotations

from pathlib import Path

from phonotheque.errors import PhonoError
from phonotheque.serve.seeder import SeedChange, Seeder, find_published

FOLLOW_EVERY = 1.0  # seconds between two checks of publish/ (a readlink and a stat)

_Key = tuple[str, int, int, int]


def generation(publish: Path) -> _Key:
    """What identifies the published index behind ``publish`` (raises OSError mid-switch)."""
    folder = Path(publish).resolve()
    try:
        st = (folder / "torrents.json").stat()
    except FileNotFoundError:
        return str(folder), 0, 0, 0
    return str(folder), st.st_ino, st.st_mtime_ns, st.st_size


class PublishFollower:
    """Keeps ``seeder`` seeding what ``publish`` currently lists (payloads in ``torrents``)."""

    def __init__(self, seeder: Seeder, torrents: Path, publish: Path) -> None:
        self.seeder = seeder
        self.torrents = Path(torrents)
        self.publish = Path(publish)
        self._key = self._current()
        self._error = ""  # the last unreadable index, reported once

    def _current(self) -> _Key | None:
        try:
            return generation(self.publish)
        except OSError:
            return None

    def poll(self) -> list[SeedChange]:
        """Follow a new publish if there is one; the changes made (none most of the time).

        An index that cannot be read is reported once and retried at the next poll,
        while the torrents seeded so far go on being seeded."""
        key = self._current()
        if key is None or key == self._key:
            return []
        try:
            items = find_published(self.torrents, self.publish)
        except PhonoError as exc:
            if str(exc) == self._error:
                return []
            self._error = str(exc)
            return [SeedChange("unusable", "torrents.json", str(exc))]
        self._key, self._error = key, ""
        return self.seeder.follow(items)
