"""MusicBrainz PostgreSQL dump tables (``phono ingest mbdump``) on the columnar path.

The row reader (:mod:`phonotheque.sources.mbdump`) joins the dump's tables in its
temporary SQLite database, as it does for a SQLite workspace; its records are staged
whole (:mod:`._records`) and merged set-based, so the tables equal the row path's.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import StageContext, Staged, _records
from phonotheque.errors import wrap_os_error
from phonotheque.sources import Input, get

KIND = "mbdump"


class MbdumpReader:
    kind = KIND
    resumable = False  # one part per input (the row reader joins the dump's tables first)

    def stage(self, con: columnar.Connection, item: Input,
              ctx: StageContext) -> Generator[Staged, None, None]:
        options = ctx.options
        if options.tmp_dir is None:  # the join database goes inside the workspace
            try:
                ctx.tmp.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise wrap_os_error(exc, ctx.tmp, writing=True) from exc
            options = replace(options, tmp_dir=ctx.tmp)
        yield _records.stage(con, item, get(KIND).read(item, options))

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        counts = bulk_merge.merge(con)
        bulk_merge.drop_staging(con)
        return counts


READER = MbdumpReader()
