"""The catalogue: SQLite store, schema and migrations, queries."""

from phonotheque.catalogue.schema import SCHEMA_VERSION
from phonotheque.catalogue.store import Store

__all__ = ["SCHEMA_VERSION", "Store"]
