"""SQLite ``file:`` URIs for paths that may hold ``#``, ``?`` or ``%``.

``sqlite3.connect(f"file:{path}?mode=ro", uri=True)`` with a folder named
``pub#x`` makes SQLite cut the path at the ``#`` (a URI fragment), drop
``mode=ro`` with it, and create an empty database at ``pub``. Every read-only
open goes through :func:`file_uri`, which percent-encodes the path.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlencode


def file_uri(path: Path | str, **params: str | int) -> str:
    """``file:<absolute path, percent-encoded>?<params>`` for ``sqlite3.connect(uri=True)``."""
    absolute = os.path.abspath(os.fsdecode(path))
    # surrogateescape: a file name that is not UTF-8 keeps its bytes
    encoded = quote(absolute.encode("utf-8", "surrogateescape"), safe="/")
    query = urlencode(params)
    return f"file:{encoded}?{query}" if query else f"file:{encoded}"
