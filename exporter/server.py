"""The HTTP server process: its connections, their limits and deadlines, signals and shutdown.

Like Prometheus' --web.max-connections and the header timeouts of mature HTTP servers, with
public asyncio and aiohttp interfaces only: aiohttp's request handler is an asyncio protocol,
and each one is wrapped here in a protocol that counts it, closes it when its first request
has not come within the header timeout, and sheds it when the limit is reached: the oldest
connection that has not sent a request yet first, then the oldest one idle between requests;
never one answering a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger("exporter.server")

# File descriptors kept for what is not a client connection: the upstream connections
# (aiohttp's connector allows 100), log and catalog files, the listening sockets.
RESERVED_DESCRIPTORS = 128
# aiohttp's run_app default: long enough for a scraper to reuse its connection.
KEEPALIVE_TIMEOUT = 75.0
# What SIGTERM allows beyond EXPORTER_SHUTDOWN_GRACE for closing down, whatever is left.
EXIT_MARGIN = 0.8


def raise_open_files_limit() -> int:
    """Raises the soft limit of open files to the hard one, as far as the kernel allows;
    returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_limit(wanted: int, open_files: int) -> int:
    """At most `wanted` client connections, and enough descriptors left for everything else:
    a server out of descriptors cannot even accept the connection that would replace one."""
    return max(8, min(wanted, open_files - RESERVED_DESCRIPTORS))


class Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol inside, counted and watched from outside."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self.transport: asyncio.Transport | None = None
        self.answering = 0  # requests being answered now
        self.answered = 0  # requests answered so far
        self._deadline: asyncio.TimerHandle | None = None
        # The transport hands what it reads straight to aiohttp: every request passes through
        # here, and the guard has nothing to do with its bytes.
        self.data_received = inner.data_received  # type: ignore[method-assign]

    @property
    def sheddable(self) -> bool:
        """Unfinished (no request yet) or idle (between requests): closing it loses nothing."""
        return self.answering == 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.header_timeout, self._headers_late
        )
        self._inner.connection_made(transport)
        self._guard.opened(self)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def started(self) -> None:
        """A request is being answered (exporter/responses.py marks each one): O(1), since
        every request pays for it."""
        self.answering += 1
        if self._deadline is not None:  # the first request: no longer silent
            self._deadline.cancel()
            self._deadline = None
            self._guard.requested(self)

    def finished(self) -> None:
        self.answering -= 1
        self.answered += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _headers_late(self) -> None:
        self._deadline = None
        if self.answering == 0 and self.answered == 0:
            self._guard.closing("header_timeout")
            self.close()


class ConnectionGuard:
    """Accepts the connections of the listening sockets and keeps them under `limit`: before
    accepting one more, the oldest connection without a request yet is closed, or else the
    oldest idle one (and when every one is answering a request, one of them must end first).

    A connection that has sent a request has shown itself a client; one that has sent none is
    what a flood of half-open connections is made of, so those go first.
    """

    def __init__(self, *, limit: int, header_timeout: float) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        # Dicts keep their order: the first key is the oldest connection. Those that have not
        # sent a request yet are also in `_silent`, so that the first of them is at hand.
        self._open: dict[Connection, None] = {}
        self._silent: dict[Connection, None] = {}
        # Sockets accepted, whether or not their connection is made yet: what counts against
        # the descriptors.
        self._accepted = 0
        self._room = asyncio.Event()

    @property
    def open(self) -> int:
        return self._accepted

    async def accept(
        self, listener: socket.socket, factory: Callable[[], asyncio.Protocol]
    ) -> None:
        """Accepts connections on `listener` for aiohttp's protocol `factory`, forever.

        Never more than the limit has room for (an event loop's own accept takes as many as
        the listen backlog at once); but what waits in the listen queue within that room is
        taken in one go, so that a burst of new clients is not accepted one loop turn each.
        """
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            await self._make_room()
            try:
                first, _ = await loop.sock_accept(listener)
            except OSError as error:
                # Out of descriptors or buffers (another process's share, say): wait a little.
                log.warning("event=accept_failed error=%r", os.strerror(error.errno or 0))
                await asyncio.sleep(0.1)
                continue
            clients = [first, *_waiting(listener, self.limit - self._accepted - 1)]
            self._accepted += len(clients)
            connected = await asyncio.gather(
                *(
                    loop.connect_accepted_socket(lambda: Connection(self, factory()), client)
                    for client in clients
                ),
                return_exceptions=True,
            )
            for client, outcome in zip(clients, connected, strict=True):
                if isinstance(outcome, BaseException):
                    self._release()
                    client.close()

    async def _make_room(self) -> None:
        while self._accepted >= self.limit:
            self._room.clear()
            victim = next(iter(self._silent), None) or next(
                (c for c in self._open if c.sheddable), None
            )
            if victim is not None:
                self.closing("connection_limit")
                victim.close()
            await self._room.wait()

    def opened(self, connection: Connection) -> None:
        self._open[connection] = None
        self._silent[connection] = None

    def requested(self, connection: Connection) -> None:
        self._silent.pop(connection, None)

    def closed(self, connection: Connection) -> None:
        self._open.pop(connection, None)
        self._silent.pop(connection, None)
        self._release()

    def _release(self) -> None:
        self._accepted -= 1
        self._room.set()

    def closing(self, why: str) -> None:
        log.warning(
            "event=connection_closed reason=%s open=%d limit=%d", why, self.open, self.limit
        )


def _waiting(listener: socket.socket, at_most: int) -> list[socket.socket]:
    """Up to `at_most` connections already in the listen queue, without waiting."""
    clients: list[socket.socket] = []
    while len(clients) < at_most:
        try:
            client, _ = listener.accept()
        except OSError:  # none left (BlockingIOError), or out of descriptors: next turn
            break
        clients.append(client)
    return clients


class ConnectionLog(logging.Filter):
    """Logs of connections and malformed requests, which any client can cause at will: each
    kind at most once a second (with how many were left out), a request aiohttp refused as
    malformed as one WARNING line naming the problem, not a traceback."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every = every
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._left_out: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not _about_connections(record):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            # What is wrong, without what follows a colon: the offending bytes, which are the
            # client's (a header's value, a token in a URL).
            problem = (error.message or type(error).__name__).strip().split(":")[0][:100]
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "event=bad_request problem=%r", (problem,)
            record.exc_info = record.exc_text = None
        kind = (record.name, str(record.msg) + type(error).__name__)
        now = self._clock()
        if now - self._last.get(kind, -float("inf")) < self._every:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            record.msg, record.args = (
                f"{record.getMessage()} (%d more like it not logged)",
                (left_out,),
            )
        return True


def _about_connections(record: logging.LogRecord) -> bool:
    # asyncio: accept() failing for want of descriptors; aiohttp.server: malformed requests
    # and connections broken mid-answer; ours: connections closed and requests refused.
    return record.name in ("asyncio", "aiohttp.server", "exporter.server", "exporter.access")


async def serve(
    app: web.Application,
    sockets: Sequence[socket.socket],
    *,
    max_connections: int,
    header_timeout: float,
    shutdown_grace: float,
    on_hangup: Callable[[], None],
) -> None:
    """Serves `app` on `sockets` until SIGTERM or SIGINT; SIGHUP calls `on_hangup`.

    On SIGTERM the listeners close at once, requests in flight get `shutdown_grace` seconds,
    and the process ends within EXIT_MARGIN more whatever is left.
    """
    loop = asyncio.get_running_loop()
    guard = ConnectionGuard(limit=max_connections, header_timeout=header_timeout)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        shutdown_timeout=shutdown_grace,
    )
    await runner.setup()
    factory = runner.server
    assert factory is not None
    accepting = [asyncio.create_task(guard.accept(sock, factory)) for sock in sockets]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await stop.wait()
    finally:
        _exit_at_the_latest(shutdown_grace + EXIT_MARGIN)
        log.info("event=stop open_connections=%d grace=%gs", guard.open, shutdown_grace)
        for task in accepting:
            task.cancel()
        for sock in sockets:
            sock.close()
        try:
            async with asyncio.timeout(shutdown_grace + EXIT_MARGIN / 2):
                await runner.cleanup()
        except TimeoutError:
            log.warning("event=stop_forced after=%gs", shutdown_grace)
        await _cancel_the_rest()


async def _cancel_the_rest() -> None:
    """Cancels every task still running (answers cut at the deadline, their computations)."""
    rest = asyncio.all_tasks() - {asyncio.current_task()}
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=EXIT_MARGIN / 4)


def _exit_at_the_latest(seconds: float) -> None:
    """Ends the process `seconds` from now if it has not ended by itself: a thread blocked
    outside the event loop (a name lookup, say) must not hold up the exit SIGTERM asked for."""

    def exit_now() -> None:
        log.warning("event=stop_forced after=%gs", seconds)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()
