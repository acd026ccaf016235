"""A workspace: one folder, one archive (see DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phonotheque.catalogue.store import Store
from phonotheque.errors import WorkspaceError, wrap_os_error

CATALOGUE = "catalogue.sqlite"
SUBDIRS = ("audio", "quarantine", "torrents", "publish")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def catalogue(self) -> Path:
        return self.root / CATALOGUE

    @property
    def audio(self) -> Path:
        return self.root / "audio"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def torrents(self) -> Path:
        return self.root / "torrents"

    @property
    def publish(self) -> Path:
        return self.root / "publish"

    @property
    def columnar_temp(self) -> Path:
        """Where DuckDB spills what exceeds its memory limit (created on first use)."""
        return self.root / "tmp" / "duckdb"

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Create (or re-open) a workspace at ``root``; idempotent."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise wrap_os_error(exc, root, writing=True) from exc
        ws = cls(root.resolve())
        Store(ws.catalogue, create=True).close()
        return ws

    @classmethod
    def open(cls, root: Path) -> Workspace:
        root = Path(root)
        if not (root / CATALOGUE).is_file():
            raise WorkspaceError(root, "not a workspace (no catalogue.sqlite; run `phono init`)")
        return cls(root.resolve())

    def store(self, *, readonly: bool = False) -> Store:
        return Store(self.catalogue, readonly=readonly)
