"""The search page and JSON API: a Starlette ASGI app over the published metadata.

Pages are rendered on the server (Jinja2, no JavaScript needed); the JSON API is
described by a hand-written OpenAPI document (:mod:`phonotheque.serve.openapi`).
Fast look-ups (ISRC, track by id) run inline on the event loop: they cost tens of
microseconds, less than a hop to a worker thread. Text searches go to the thread
pool, where SQLite releases the GIL, so one slow search does not stall the rest.
"""

from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from phonotheque import isrc as isrc_mod
from phonotheque.errors import InvalidISRC, PhonoError
from phonotheque.serve import openapi, swarm_view
from phonotheque.serve.queries import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_LIMIT,
    MAX_ID,
    MAX_TORRENT_LIMIT,
    BadQuery,
    PublishedDB,
    SearchPage,
)
from phonotheque.swarm import adopt as adopt_mod

METADATA = "metadata.sqlite"
COVERAGE_IMAGES = ("coverage.svg", "coverage.png")
_STATIC = Path(__file__).parent / "static"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
]


@dataclass(frozen=True)
class ServeOptions:
    """How to serve one published folder."""

    publish: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    cache_bytes: int = DEFAULT_CACHE_BYTES  # cached answers per worker (the file is immutable)
    # How often (seconds) a request looks whether publish/ has switched to a new
    # generation (a `phono publish` or `release` since); 0: at every request.
    reload_interval: float = 0.5


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _api_error(status: int, code: str, message: str) -> JSON:
    return JSON({"error": {"status": status, "code": code, "message": message}}, status)


# -- template helpers ------------------------------------------------------------------
def _duration(ms: int | None) -> str:
    if not ms:
        return "–"
    s = round(ms / 1000)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _number(n: Any) -> str:
    if isinstance(n, bool) or not isinstance(n, int | float):
        return str(n)
    return f"{n:,}" if isinstance(n, int) else f"{n:,.4g}"


def _coverage_svg(points: list[tuple[int, float]], width: int = 640, height: int = 320) -> Markup:
    """A small, accessible SVG line chart: cumulative share of listens against rank."""
    left, right, top, bottom = 48, 12, 12, 36
    n = max((p[0] for p in points), default=0) or 1
    w, h = width - left - right, height - top - bottom

    def xy(rank: int, share: float) -> str:
        return f"{left + rank / n * w:.1f},{top + (1 - share) * h:.1f}"

    path = " ".join(xy(r, s) for r, s in points)
    grid = []
    for share in (0, 0.25, 0.5, 0.75, 1):
        y = top + (1 - share) * h
        grid.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{share:.0%}</text>'
        )
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = left + frac * w
        grid.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{_number(round(frac * n))}</text>"
        )
    desc = "; ".join(
        f"top {_number(r)} tracks: {s:.0%}" for r, s in points[1 :: max(1, len(points) // 6)]
    )
    return Markup(
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="cov-title cov-desc"'
        f' class="chart"><title id="cov-title">Cumulative share of listens by track rank</title>'
        f'<desc id="cov-desc">{html.escape(desc)}</desc>{"".join(grid)}'
        f'<polyline points="{path}" class="curve"/>'
        f'<text x="{left + w / 2}" y="{height - 4}" text-anchor="middle">tracks, by rank</text>'
        "</svg>"
    )


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("phonotheque.serve", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=_duration, size=_size, number=_number)
    return env


# -- the app ---------------------------------------------------------------------------
class _SecurityHeaders:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) adding fixed headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


# An integer parameter as the API documents it: ASCII digits, one optional minus.
# (str.isdigit() also accepts '²' and '¹²', which int() then refuses: a 500.)
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class _App(Starlette):
    """Starlette with the security headers outside every other layer.

    Middleware added with ``add_middleware`` sits *inside* Starlette's
    ServerErrorMiddleware, so the 500 page it sends went out without them.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return _SecurityHeaders(super().build_middleware_stack())


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadQuery(name, f"must be an integer, got {raw[:40]!r}", f"bad_{name}")
    return int(raw)


def _id_param(raw: str) -> int:
    """A track id from the path: 1 to MAX_ID in ASCII digits; else BadQuery (400)."""
    if not _INTEGER.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        raise BadQuery("id", f"must be a positive integer, got {raw[:40]!r}", "bad_id")
    return int(raw)


@dataclass(frozen=True)
class _Archive:
    """What every handler reads: the published folder, its database and the page templates."""

    publish: Path
    db: PublishedDB
    env: Environment
    site: dict[str, Any]
    swarm: swarm_view.SwarmIndex

    def page(self, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(site=self.site, **context)
        return HTMLResponse(body, http_status)

    def coverage_image(self) -> Path | None:
        for name in COVERAGE_IMAGES:
            if (self.publish / name).is_file():
                return self.publish / name
        return None


def _generation(publish: Path) -> tuple[str, int, int, int]:
    """What identifies the published generation behind ``publish``.

    ``publish/`` is a symlink that `phono publish` switches to a new folder in one
    rename, so the resolved folder names the generation; the database file's inode
    and times also catch a folder whose ``metadata.sqlite`` was replaced in place
    (renamed over, never rewritten: an open connection keeps reading the old one).
    """
    folder = publish.resolve()
    st = (folder / METADATA).stat()
    return str(folder), st.st_ino, st.st_mtime_ns, st.st_size


class _Live:
    """The archive being served, reopened when ``publish/`` switches generation.

    The database is opened ``immutable=1`` (no locks, answers cached): right only
    while the file never changes, which is why a new publish is a new generation
    folder and the server moves to it as a whole, never mixing two.
    """

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.publish = Path(options.publish)
        self._lock = threading.Lock()
        self._env = _env()
        self._key = _generation(self.publish)
        self.archive = self._open(Path(self._key[0]))
        self._checked = time.monotonic()

    def _open(self, folder: Path) -> _Archive:
        db = PublishedDB(folder / METADATA, cache_bytes=self.options.cache_bytes)
        site = {"name": db.info.get("name", "Phonothèque")}
        return _Archive(folder, db, self._env, site, swarm_view.SwarmIndex(folder))

    def current(self) -> _Archive:
        now = time.monotonic()
        if now - self._checked < self.options.reload_interval:
            return self.archive
        with self._lock:
            self._checked = now
            try:
                key = _generation(self.publish)
                if key != self._key:
                    self.archive = self._open(Path(key[0]))
                    self._key = key
            except (OSError, PhonoError):
                pass  # mid-switch or unreadable: keep serving the generation we have
        return self.archive


def _archive(request: Request) -> _Archive:
    live: _Live = request.app.state.live
    return live.current()


# -- HTML ------------------------------------------------------------------------------
async def home(request: Request) -> Response:
    a = _archive(request)
    if request.query_params.get("q"):
        return RedirectResponse(f"/search?{urlencode({'q': request.query_params['q']})}")
    return a.page("home.html", stats=a.db.stats(), q="")


async def search_page(request: Request) -> Response:
    a = _archive(request)
    q = request.query_params.get("q", "")
    try:
        offset = _int_param(request, "offset", 0)
        limit = _int_param(request, "limit", DEFAULT_LIMIT)
        result: SearchPage | None = await run_in_threadpool(a.db.search, q, limit, offset)
        error = None
    except BadQuery as exc:
        result, error = None, str(exc)
    if result is not None and result.kind == "isrc" and len(result.results) == 1 and not offset:
        return RedirectResponse(f"/track/{result.results[0]['id']}", 303)
    more = None
    if result is not None and result.next_offset is not None:
        more = "/search?" + urlencode({"q": q, "offset": result.next_offset, "limit": limit})
    prev = None
    if result is not None and result.offset > 0:
        prev = "/search?" + urlencode({"q": q, "offset": max(0, offset - limit), "limit": limit})
    return a.page(
        "search.html", 400 if error else 200, q=q[:200], page=result, error=error,
        more=more, prev=prev,
    )  # fmt: skip


async def track_page(request: Request) -> Response:
    a = _archive(request)
    track = a.db.track(_id_param(request.path_params["id"]))
    if track is None:
        raise HTTPException(404, "no such track in this archive")
    return a.page("track.html", track=track, q="")


async def torrents_page(request: Request) -> Response:
    a = _archive(request)
    sort, order = request.query_params.get("sort"), request.query_params.get("order")
    torrents = swarm_view.sort_rows(
        swarm_view.with_health(a.db.torrents(), a.swarm), sort, order)
    current = [t for t in torrents if not t["obsolete"]]
    return a.page(
        "torrents.html", current=current, obsolete=[t for t in torrents if t["obsolete"]],
        total=sum(t["size"] for t in current), bands=swarm_view.band_totals(current),
        sort=sort or "", order=order or "", q="",
    )  # fmt: skip


async def adopt_page(request: Request) -> Response:
    a = _archive(request)
    budget = request.query_params.get("budget")
    max_seeders = request.query_params.get("max_seeders")
    adoption, error = None, None
    if budget is not None:
        try:
            adoption = swarm_view.adopt(a.swarm, swarm_view.parse_adopt(budget, max_seeders))
        except BadQuery as exc:
            error = str(exc)
    query = urlencode({"budget": budget or "", "max_seeders": max_seeders or ""})
    return a.page("adopt.html", 400 if error else 200, adoption=adoption, error=error,
                  budget=(budget or "")[:40], max_seeders=(max_seeders or "")[:12], query=query,
                  q="")


async def adopt_download(request: Request) -> Response:
    """The adopted torrents as magnets.txt (text) or a zip of their .torrent files."""
    a = _archive(request)
    options = swarm_view.parse_adopt(request.query_params.get("budget"),
                                     request.query_params.get("max_seeders"))
    adoption = swarm_view.adopt(a.swarm, options)
    if request.url.path.endswith(".zip"):
        try:
            body = await run_in_threadpool(adopt_mod.zip_bytes, adoption, a.publish)
        except PhonoError as exc:
            raise HTTPException(404, f"not published: {exc.problem}") from exc
        return Response(body, media_type="application/zip", headers={
            "content-disposition": 'attachment; filename="adopt.zip"'})
    return Response(adopt_mod.magnets(adoption), media_type="text/plain; charset=utf-8")


async def coverage_page(request: Request) -> Response:
    a = _archive(request)
    image = a.coverage_image()
    chart = None if image else _coverage_svg(await run_in_threadpool(a.db.coverage))
    html_report = (a.publish / "coverage.html").is_file()
    return a.page(
        "coverage.html", image=f"/{image.name}" if image else None, chart=chart,
        html_report=html_report, stats=a.db.stats(), q="",
    )  # fmt: skip


async def coverage_file(request: Request) -> Response:
    name = request.url.path.lstrip("/")
    path = _archive(request).publish / name
    if name not in (*COVERAGE_IMAGES, "coverage.html") or not path.is_file():
        raise HTTPException(404, "not published")
    return FileResponse(path)


async def stats_page(request: Request) -> Response:
    a = _archive(request)
    return a.page("stats.html", stats=a.db.stats(), info=a.db.info, q="")


async def api_page(request: Request) -> Response:
    return _archive(request).page("api.html", q="", spec=openapi.SPEC)


# -- JSON API --------------------------------------------------------------------------
async def api_search(request: Request) -> Response:
    q = request.query_params.get("q")
    if q is None:
        return _api_error(400, "missing_q", "q: required")
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    offset = _int_param(request, "offset", 0)
    result = await run_in_threadpool(_archive(request).db.search, q, limit, offset)
    return JSON(result.as_dict())


async def api_isrc(request: Request) -> Response:
    raw = request.path_params["isrc"]
    if len(raw) > 40:
        return _api_error(400, "invalid_isrc", f"{raw[:40]!r}...: too long to be an ISRC")
    try:
        code = isrc_mod.parse(raw)
    except InvalidISRC as exc:
        return _api_error(400, "invalid_isrc", str(exc))
    rows = _archive(request).db.by_isrc(code.code)
    if not rows:
        return _api_error(404, "not_found", f"{code.code}: no track with this ISRC here")
    # count: the tracks listed (the first MAX_ISRC_MATCHES by id); total: every track
    # carrying it (/api/search?q=ISRC pages through them all)
    return JSON({"isrc": code.code, "count": len(rows),
                 "total": _archive(request).db.isrc_total(code.code), "results": rows})


async def api_track(request: Request) -> Response:
    track_id = _id_param(request.path_params["id"])
    track = _archive(request).db.track(track_id)
    if track is None:
        return _api_error(404, "not_found", f"track {track_id}: not in this archive")
    return JSON(track)


async def api_torrents(request: Request) -> Response:
    a = _archive(request)
    limit = _int_param(request, "limit", MAX_TORRENT_LIMIT)
    offset = _int_param(request, "offset", 0)
    sort, order = request.query_params.get("sort"), request.query_params.get("order")
    total = a.db.torrent_count()
    rows = swarm_view.with_health(a.db.torrents(limit, offset), a.swarm)  # checks limit, offset
    # totals per band, and sorting by swarm health, need every row (thousands at most)
    every = swarm_view.with_health(_all_torrents(a.db), a.swarm)
    if sort:
        rows = swarm_view.sort_rows(every, sort, order)[offset:offset + limit]
    more = offset + len(rows) < total
    return JSON(
        {"total": total, "limit": limit, "offset": offset, "count": len(rows),
         "next_offset": offset + len(rows) if more else None, "torrents": rows,
         "bands": [b.as_dict() for b in swarm_view.band_totals(every)]}
    )  # fmt: skip


def _all_torrents(db: PublishedDB) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while batch := db.torrents(MAX_TORRENT_LIMIT, len(out)):
        out.extend(batch)
        if len(batch) < MAX_TORRENT_LIMIT:
            break
    return out


async def api_adopt(request: Request) -> Response:
    a = _archive(request)
    options = swarm_view.parse_adopt(request.query_params.get("budget"),
                                     request.query_params.get("max_seeders"))
    return JSON(swarm_view.adopt(a.swarm, options).as_dict())


async def api_stats(request: Request) -> Response:
    db = _archive(request).db
    return JSON({"info": db.info, "stats": db.stats()})


async def api_openapi(request: Request) -> Response:
    return JSON(openapi.SPEC)


# -- errors ----------------------------------------------------------------------------
async def bad_query(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadQuery)
    if request.url.path.startswith("/api/"):
        return _api_error(400, exc.code, str(exc))
    return _archive(request).page("error.html", 400, status=400, message=str(exc), q="")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
        return _api_error(exc.status_code, "not_found" if exc.status_code == 404 else "http",
                          str(exc.detail))
    return _archive(request).page("error.html", exc.status_code, status=exc.status_code,
                                  message=exc.detail, q="")


async def server_error(request: Request, exc: Exception) -> Response:
    # Never leak internals; the log (uvicorn) has the traceback.
    if request.url.path.startswith("/api/"):
        return _api_error(500, "internal", "internal error")
    return _archive(request).page("error.html", 500, status=500, message="internal error", q="")


def _routes() -> list[BaseRoute]:
    """Every URL the app answers, in one place."""
    return [
        Route("/", home),
        Route("/search", search_page),
        Route("/track/{id}", track_page),
        Route("/torrents", torrents_page),
        Route("/adopt", adopt_page),
        Route("/adopt.txt", adopt_download),
        Route("/adopt.zip", adopt_download),
        Route("/coverage", coverage_page),
        Route("/coverage.svg", coverage_file),
        Route("/coverage.png", coverage_file),
        Route("/coverage.html", coverage_file),
        Route("/stats", stats_page),
        Route("/api", api_page),
        Route("/api/search", api_search),
        Route("/api/isrc/{isrc}", api_isrc),
        Route("/api/tracks/{id}", api_track),
        Route("/api/torrents", api_torrents),
        Route("/api/adopt", api_adopt),
        Route("/api/stats", api_stats),
        Route("/openapi.json", api_openapi),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]


_EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    BadQuery: bad_query,
    HTTPException: http_error,
    Exception: server_error,
}


def create_app(options: ServeOptions) -> Starlette:
    """The ASGI app serving ``options.publish`` (opened now, so a bad folder fails early);
    it follows each new generation `phono publish` switches ``publish/`` to."""
    publish = Path(options.publish)
    if not (publish / METADATA).is_file():
        PublishedDB(publish / METADATA)  # raises the error that says what to run
    live = _Live(options)
    app = _App(routes=_routes(), exception_handlers=_EXCEPTION_HANDLERS)
    app.state.live = live
    app.state.db = live.archive.db  # the generation served first (tests)
    return app


__all__ = ["JSON", "ServeOptions", "create_app"]
