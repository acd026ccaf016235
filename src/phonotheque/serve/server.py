"""Run the app under uvicorn: in the foreground (``phono serve``) or in a background thread.

We bind the listening socket ourselves so that port 0 works (the caller learns the
real port) and so that several worker processes can share it: uvicorn's own
``workers=`` needs an import string and ambient configuration, which we avoid.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from phonotheque.errors import InputError, wrap_os_error
from phonotheque.serve.app import ServeOptions, create_app


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM end ``run()`` normally instead of being re-raised
    after shutdown: stopping the server is the expected way to leave ``phono serve``."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _config(options: ServeOptions, app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        backlog=2048,
    )


def _bind(config: uvicorn.Config) -> socket.socket:
    """The listening socket, bound here rather than by ``config.bind_socket()``: uvicorn
    logs its own ERROR line and exits on a taken port, before we can say it once."""
    where = f"{config.host}:{config.port}"
    try:
        infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(where, f"cannot listen: unknown host ({exc.strerror})") from exc
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # listen now: clients that connect before a worker is up wait in the backlog
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(where, "cannot listen: address already in use "
                                    "(another server on this port? try --port)") from exc
        raise wrap_os_error(exc, where) from exc
    sock.set_inheritable(True)  # worker processes serve on it
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def run(options: ServeOptions, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; ``options.workers`` processes share one socket."""
    app = create_app(options)  # opens the database now: a bad folder fails before binding
    config = _config(options, app)
    sock = _bind(config)
    if on_ready is not None:
        on_ready(url_of(sock, options.host))
    if options.workers <= 1:
        _Server(config).run(sockets=[sock])
        return
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_worker, args=(options, sock), daemon=True)
        for _ in range(options.workers)
    ]
    for p in procs:
        p.start()

    def forward(signum: int, frame: Any) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    old_int = signal.signal(signal.SIGINT, forward)
    old_term = signal.signal(signal.SIGTERM, forward)
    try:
        for p in procs:
            p.join()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        sock.close()


def _worker(options: ServeOptions, sock: socket.socket) -> None:
    # Each worker builds its own app: SQLite connections must not cross a fork.
    config = _config(options, create_app(options))
    _Server(config).run(sockets=[sock])


@contextmanager
def background(options: ServeOptions) -> Iterator[str]:
    """Serve in a thread of this process (tests, demo); yields the base URL."""
    app = create_app(options)
    config = _config(options, app)
    sock = _bind(config)
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.01)
        yield url_of(sock, options.host)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
