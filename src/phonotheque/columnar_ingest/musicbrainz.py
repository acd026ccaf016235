"""MusicBrainz JSON on the columnar path (``phono ingest musicbrainz``).

Every layout the row reader takes (:mod:`phonotheque.sources.musicbrainz`: lines,
documents, ``.tar.xz`` archives) is read by that reader and staged whole
(:mod:`._records`), so rows, provenance and rejects are the row path's.
"""

from __future__ import annotations

from phonotheque.catalogue import bulk_merge, columnar
from phonotheque.columnar_ingest import StageContext, Staged, _records
from phonotheque.sources import Input, get

KIND = "musicbrainz"


class MusicBrainzReader:
    kind = KIND

    def stage(self, con: columnar.Connection, item: Input, ctx: StageContext) -> Staged:
        return _records.stage(con, item, get(KIND).read(item, ctx.options))

    def merge(self, con: columnar.Connection, staged: Staged) -> dict[str, list[int]]:
        counts = bulk_merge.merge(con)
        bulk_merge.drop_staging(con)
        return counts


READER = MusicBrainzReader()
