"""The OpenAPI 3.0 document of the JSON API, written by hand so it says exactly what we promise.

schemathesis fuzzes the app against this document (tests/serve/test_fuzz.py): every
limit stated here is enforced by the handlers, and no input may produce a 5xx.
"""

from __future__ import annotations

from typing import Any

from phonotheque import __version__
from phonotheque.serve.queries import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_TORRENT_LIMIT,
    MAX_TORRENT_OFFSET,
)
from phonotheque.serve.swarm_view import MAX_BUDGET_TEXT, SORT_KEYS

_ERROR = {"$ref": "#/components/responses/Error"}


def _int_query(name: str, minimum: int, maximum: int, default: int, doc: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": doc,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default},
    }


_LIMIT = _int_query("limit", 1, MAX_LIMIT, DEFAULT_LIMIT, "Results per page.")
_OFFSET = _int_query("offset", 0, MAX_OFFSET, 0, "Results to skip (use `next_offset`).")

_nullable_str = {"type": "string", "nullable": True}
_nullable_int = {"type": "integer", "nullable": True}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Phonothèque archive API",
        "version": __version__,
        "description": (
            "Read-only look-ups in a published Phonothèque archive: find a track by text or "
            "ISRC, and the torrent and path inside it that hold its audio."
        ),
        "license": {"name": "GPL-3.0-or-later"},
    },
    "paths": {
        "/api/search": {
            "get": {
                "operationId": "search",
                "summary": "Search titles, artists, releases and ISRCs",
                "description": (
                    "Full-text search with prefix and diacritic-insensitive matching. A query "
                    "that is an ISRC (spaces and hyphens allowed) is an exact ISRC look-up "
                    "(kind 'isrc'); one that is the start of an ISRC (country, registrant and "
                    "at least one digit) lists the tracks whose ISRC starts so, in code order "
                    "(kind 'isrc_prefix'; a text search if none does)."
                ),
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": True,
                        "description": "Search text or an ISRC.",
                        "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                    },
                    _LIMIT,
                    _OFFSET,
                ],
                "responses": {
                    "200": {
                        "description": "One page of results.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/SearchPage"}}
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/isrc/{isrc}": {
            "get": {
                "operationId": "isrc",
                "summary": "Tracks with this ISRC",
                "parameters": [
                    {
                        "name": "isrc",
                        "in": "path",
                        "required": True,
                        "description": "ISRC, e.g. GBAAA9900303 or GB-AAA-99-00303.",
                        "schema": {"type": "string", "maxLength": 40},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The tracks carrying this ISRC: the first 100 by "
                                       "track id ('count' of them) of 'total'; "
                                       "/api/search?q=ISRC pages through every one.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["isrc", "count", "total", "results"],
                                    "properties": {
                                        "isrc": {"type": "string"},
                                        "count": {"type": "integer"},
                                        "total": {"type": "integer"},
                                        "results": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Track"},
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/api/tracks/{id}": {
            "get": {
                "operationId": "track",
                "summary": "One track, with its artists, ISRCs and files",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The track.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Track"}}
                        },
                    },
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/api/torrents": {
            "get": {
                "operationId": "torrents",
                "summary": "Published torrents (data, metadata, art) with swarm health, current first",
                "description": (
                    "Each torrent carries the seeders, leechers and completed downloads its "
                    "trackers last reported (null: never scraped), when (`stats_scraped_at`), "
                    "whether the archive's own seeder holds it, and a `risk` band: red 0-3 "
                    "seeders, amber 4-10, green more, unknown never scraped. `bands` totals "
                    "the current torrents per popularity band."
                ),
                "parameters": [
                    _int_query("limit", 1, MAX_TORRENT_LIMIT, MAX_TORRENT_LIMIT, "Torrents per page."),
                    _int_query("offset", 0, MAX_TORRENT_OFFSET, 0, "Torrents to skip."),
                    {"name": "sort", "in": "query", "required": False,
                     "description": "Sort key (default: current first, by kind, wave, band).",
                     "schema": {"type": "string", "enum": list(SORT_KEYS)}},
                    {"name": "order", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}},
                ],
                "responses": {
                    "200": {
                        "description": "One page of torrents.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["total", "torrents"],
                                    "properties": {
                                        "total": {"type": "integer"},
                                        "limit": {"type": "integer"},
                                        "offset": {"type": "integer"},
                                        "count": {"type": "integer"},
                                        "next_offset": _nullable_int,
                                        "torrents": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Torrent"},
                                        },
                                        "bands": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/BandTotal"},
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/adopt": {
            "get": {
                "operationId": "adopt",
                "summary": "Torrents for a volunteer: those that most need seeders, within a budget",
                "description": (
                    "Current torrents (never obsolete ones), fewest seeders first, the most "
                    "listened band first among equals; a torrent that does not fit what is "
                    "left of the budget is skipped. Also as a page (/adopt), a zip of the "
                    ".torrent files (/adopt.zip) and magnet links (/adopt.txt)."
                ),
                "parameters": [
                    {"name": "budget", "in": "query", "required": True,
                     "description": "Space to give: 2TB, 500GB, 1.5TiB or bytes.",
                     "schema": {"type": "string", "minLength": 1,
                                "maxLength": MAX_BUDGET_TEXT}},
                    _int_query("max_seeders", 0, 999_999_999, 999_999_999,
                               "Only torrents with at most this many seeders."),
                ],
                "responses": {
                    "200": {
                        "description": "The chosen torrents, most needed first.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Adoption"}
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/api/stats": {
            "get": {
                "operationId": "stats",
                "summary": "Archive statistics and build information",
                "responses": {
                    "200": {
                        "description": "Statistics.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["info", "stats"],
                                    "properties": {
                                        "info": {"type": "object"},
                                        "stats": {"type": "object"},
                                    },
                                }
                            }
                        },
                    }
                },
            }
        },
    },
    "components": {
        "responses": {
            "Error": {
                "description": "Bad input or nothing found.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                },
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["status", "code", "message"],
                        "properties": {
                            "status": {"type": "integer"},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    }
                },
            },
            "SearchPage": {
                "type": "object",
                "required": ["query", "kind", "limit", "offset", "count", "next_offset", "results"],
                "properties": {
                    "query": {"type": "string"},
                    "kind": {"type": "string", "enum": ["text", "isrc", "isrc_prefix", "empty"]},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "count": {"type": "integer"},
                    "next_offset": _nullable_int,
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Track"}},
                },
            },
            "Torrent": {
                "type": "object",
                "required": ["id", "kind", "name", "magnet", "size", "files", "obsolete"],
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "band": _nullable_int,
                    "wave": _nullable_int,
                    "infohash_v1": _nullable_str,
                    "infohash_v2": _nullable_str,
                    "magnet": {"type": "string", "nullable": True,
                               "description": "null when withdrawn."},
                    "magnet_v1": {"type": "string", "nullable": True,
                                  "description": "The v1-only companion of a hybrid torrent "
                                  "(same files), for clients that cannot read hybrid torrents "
                                  "(aria2 before 1.37); null otherwise."},
                    "size": {"type": "integer"},
                    "files": {"type": "integer"},
                    "obsolete": {"type": "boolean"},
                    "withdrawn": {"type": "boolean", "description": "Taken down: it carried "
                                  "a recording on the exclusion list; no magnet is given."},
                    "added_at": {"type": "string"},
                    "seeders": _nullable_int,
                    "leechers": _nullable_int,
                    "completed": _nullable_int,
                    "stats_scraped_at": _nullable_str,
                    "currently_seeding": {"type": "boolean"},
                    "risk": {"type": "string", "enum": ["red", "amber", "green", "unknown"]},
                },
            },
            "BandTotal": {
                "type": "object",
                "required": ["band", "torrents", "at_risk", "never_scraped"],
                "properties": {
                    "band": _nullable_int,
                    "torrents": {"type": "integer"},
                    "at_risk": {"type": "integer", "description": "Torrents under 4 seeders."},
                    "never_scraped": {"type": "integer"},
                    "seeders": {"type": "integer"},
                },
            },
            "Adoption": {
                "type": "object",
                "required": ["budget", "total_size", "count", "torrents"],
                "properties": {
                    "budget": {"type": "integer"},
                    "total_size": {"type": "integer"},
                    "count": {"type": "integer"},
                    "candidates": {"type": "integer"},
                    "skipped": {"type": "integer"},
                    "torrents": {"type": "array", "items": {"type": "object"}},
                },
            },
            "File": {
                "type": "object",
                "required": ["path", "size", "sha256", "tier", "torrent"],
                "properties": {
                    "path": {"type": "string", "description": "Path inside the torrent."},
                    "size": {"type": "integer"},
                    "sha256": {"type": "string"},
                    "btv2_root": _nullable_str,
                    "tier": {"type": "string"},
                    "container": _nullable_str,
                    "codec": _nullable_str,
                    "bitrate": _nullable_int,
                    "original_sha256": _nullable_str,
                    "original_size": _nullable_int,
                    "patch_path": _nullable_str,
                    "torrent": {"type": "object"},
                },
            },
            "Track": {
                "type": "object",
                "required": ["id", "title", "listens", "status", "artists", "isrcs", "files"],
                "properties": {
                    "id": {"type": "integer"},
                    "mbid": _nullable_str,
                    "title": {"type": "string"},
                    "artist_credit": _nullable_str,
                    "disc": _nullable_int,
                    "position": _nullable_int,
                    "duration_ms": _nullable_int,
                    "source": _nullable_str,
                    "licence": _nullable_str,
                    "listens": {"type": "integer"},
                    "rank": _nullable_int,
                    "band": _nullable_int,
                    "tier": _nullable_str,
                    "status": {"type": "string"},
                    "withdrawn": {"type": "boolean", "description": "Taken down (status "
                                  "excluded): metadata only, files is empty."},
                    "release": {"type": "object", "nullable": True},
                    "artists": {"type": "array", "items": {"type": "object"}},
                    "isrcs": {"type": "array", "items": {"type": "string"}},
                    "files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                },
            },
        },
    },
}
