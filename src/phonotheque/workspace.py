"""A workspace: one folder, one archive (see DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phonotheque.catalogue.store import Store
from phonotheque.errors import BusyError, InputError, StorageError, WorkspaceError, wrap_os_error

CATALOGUE = "catalogue.sqlite"
# The columnar catalogue's file (catalogue/bulk.py): its presence makes a workspace columnar.
COLUMNAR = "catalogue.duckdb"
#: Where a workspace keeps its bulk tables (tracks, releases, artists, ISRCs, listens).
ENGINES = ("sqlite", "duckdb")
SUBDIRS = ("audio", "quarantine", "torrents", "publish")

#: The ``phono`` commands that run on a columnar workspace. Every other command that
#: takes a workspace would read or write bulk tables in catalogue.sqlite, which a
#: columnar workspace does not keep up to date, so it refuses one (exit 2, see
#: :func:`require_support`) rather than act on stale rows. When a command's columnar
#: path lands, add it here (one line): the library function the command calls must
#: then handle ``ws.engine == "duckdb"`` itself, because ``phono build`` calls the same
#: functions (its stages ingest, select and publish run when their commands are here).
COLUMNAR_COMMANDS: frozenset[str] = frozenset({
    "init",
    "build",  # runs the stages listed here, skips the others and says so
    "demo",  # a build over the bundled data: every stage it runs is listed here
    "stats",
    "compare",
    "rejects",
    "exclude list",
    "exclude add",  # exclusions.add/remove refresh track.excluded in catalogue.duckdb
    "exclude remove",
    "ingest musicbrainz",  # columnar_ingest: one set-based merge per input
    "ingest mbdump",  # the row reader's records, staged whole and merged set-based
    "ingest listens",  # columnar_ingest/listens: CSV/Parquet read by DuckDB
    "ingest tags",  # columnar_tags: files matched in catalogue.duckdb, source_audio in SQLite
    "audio",  # audio/stage.py: held tracks mirrored (catalogue/held.py), ledger in DuckDB
    "pack",  # pack/packer.py: reads the held tracks' mirror
    "gc",
    "release",  # pack, the next wave (catalogue.sqlite), publish: each runs here
    "publish",  # publish/columnar_export: DuckDB's Parquet, metadata.sqlite in key order
    "select",  # select/columnar_plan.py: all ten steps in DuckDB
    "ledger",  # select/ledger_view.py: catalogue.duckdb's ledger and selection
    "coverage-report",  # the last select run's stored summary (catalogue.sqlite)
    "health",  # torrents, swarm: operational tables
    "seed",
    "serve",  # these three read publish/ only
    "adopt",
    "verify",
})

#: Why a command stays unavailable on a columnar workspace, where there is more to say
#: than "not yet" (none now: every command runs there).
_WHY_NOT: dict[str, str] = {}


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
    def columnar(self) -> Path:
        """The columnar catalogue (DuckDB) of a workspace created with ``--engine duckdb``."""
        return self.root / COLUMNAR

    @property
    def engine(self) -> str:
        """``duckdb`` if the bulk tables live in the columnar catalogue, else ``sqlite``."""
        return "duckdb" if self.columnar.is_file() else "sqlite"

    @property
    def columnar_temp(self) -> Path:
        """Where DuckDB spills what exceeds its memory limit (created on first use)."""
        return self.root / "tmp" / "duckdb"

    @classmethod
    def create(cls, root: Path, engine: str | None = None) -> Workspace:
        """Create (or re-open) a workspace at ``root``; idempotent.

        ``engine`` ``duckdb`` makes it columnar (an existing SQLite workspace's bulk
        tables are copied over, ids kept); ``sqlite`` or None leaves the engine as it is,
        and a columnar workspace cannot go back.
        """
        if engine is not None and engine not in ENGINES:
            raise WorkspaceError(root, f"unknown engine {engine!r} (use {' or '.join(ENGINES)})")
        root = Path(root)
        if engine == "duckdb" and not (root / COLUMNAR).is_file():
            # a bad $PHONO_MEMORY stops the conversion: refuse it before anything is
            # made, not after a SQLite workspace was (the user asked for a columnar one)
            from phonotheque.catalogue import bulk, columnar

            columnar.check_path(root.absolute())
            bulk.stage_memory()
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise wrap_os_error(exc, root, writing=True) from exc
        ws = cls(root.resolve())
        Store(ws.catalogue, create=True).close()
        if engine == "sqlite" and ws.engine == "duckdb":
            raise WorkspaceError(root, "this workspace is columnar (catalogue.duckdb); "
                                       "it cannot go back to --engine sqlite")
        if engine == "duckdb" and ws.engine == "sqlite":
            _make_columnar(ws)
        ws._record_engine()
        return ws

    @classmethod
    def open(cls, root: Path) -> Workspace:
        root = Path(root)
        if not (root / CATALOGUE).is_file():
            raise WorkspaceError(root, "not a workspace (no catalogue.sqlite; run `phono init`)")
        ws = cls(root.resolve())
        ws._record_engine()
        return ws

    def _record_engine(self) -> None:
        """Keep in catalogue.sqlite that the workspace is columnar, and refuse one whose
        catalogue.duckdb has gone: its tracks live there, so without it the workspace
        read as an empty SQLite one (stats counted 0 tracks, exit 0; an ingest would
        have started a second catalogue beside the lost one). Workspaces made columnar
        before this was kept get it recorded on their next open (skipped while another
        run holds the file: a later open records it)."""
        with Store(self.catalogue, readonly=True) as store:
            recorded = store.get_meta(ENGINE_META)
        if self.columnar.is_file():
            if recorded != "duckdb":
                try:
                    with Store(self.catalogue) as store, store.transaction():
                        store.set_meta(ENGINE_META, "duckdb")
                except (BusyError, StorageError, WorkspaceError):
                    pass  # held by another run, or a read-only copy: a later open records it
            return
        if recorded == "duckdb":
            raise _columnar_missing(self.root)

    def store(self, *, readonly: bool = False) -> Store:
        return Store(self.catalogue, readonly=readonly)


#: catalogue.sqlite's ``meta`` key naming a columnar workspace's engine (see
#: Workspace._record_engine).
ENGINE_META = "engine"


def _columnar_missing(root: Path) -> WorkspaceError:
    return WorkspaceError(root, f"{COLUMNAR} is missing: this workspace is columnar and its "
                                "tracks live in that file; restore it from a backup (nothing "
                                "was changed)")


def check_columnar_present(root: Path) -> None:
    """Refuse, only reading, what Workspace.open refuses, for a reader that opens no
    Workspace (compare): a catalogue.sqlite that is damaged or of a newer schema (its
    read-only open says so), and a workspace recorded columnar whose catalogue.duckdb has
    gone."""
    root = Path(root)
    with Store(root / CATALOGUE, readonly=True) as store:
        if store.get_meta(ENGINE_META) == "duckdb" and not (root / COLUMNAR).is_file():
            raise _columnar_missing(root)


def _make_columnar(ws: Workspace) -> None:
    """Create the columnar catalogue and move the bulk tables there.

    Built under a temporary name and renamed, so a crash leaves the workspace as it was.
    """
    from phonotheque.catalogue import bulk

    tmp = ws.root / f".{COLUMNAR}.new"
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = bulk.open_bulk(ws.root, create=True, file=tmp)
    try:
        bulk.convert_from_sqlite(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    try:
        tmp.rename(ws.columnar)
    except OSError as exc:
        raise wrap_os_error(exc, ws.columnar, writing=True) from exc


def columnar_why(command: str) -> str:
    """Why ``phono command`` does not run on a columnar workspace."""
    why = _WHY_NOT.get(command)
    return "not available on a columnar workspace (catalogue.duckdb)" + (
        f": {why}" if why else " yet")


def columnar_refusal(command: str) -> str:
    """Why ``phono command`` does not run on a columnar workspace, and what does."""
    usable = ", ".join(sorted(COLUMNAR_COMMANDS - {"init"}))
    return f"{columnar_why(command)}. On a columnar workspace use: {usable}"


def require_support(root: Path, command: str) -> None:
    """Refuse ``phono command`` on the columnar workspace at ``root`` unless it runs there.

    Raises :class:`InputError` (exit 2); a SQLite workspace (or none) passes.
    """
    if command not in COLUMNAR_COMMANDS and (Path(root) / COLUMNAR).is_file():
        raise InputError(f"phono {command}", columnar_refusal(command))
