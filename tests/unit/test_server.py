"""The server's own rules: how many connections, and how their errors are logged."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.test_utils import make_mocked_request

from exporter.errors import InvalidRequest
from exporter.responses import answering
from exporter.server import (
    RESERVED_DESCRIPTORS,
    Connection,
    ConnectionGuard,
    ConnectionLog,
    connection_limit,
)


def record(name: str, message: str, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = None if error is None else (type(error), error, None)
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), exc_info)


def test_connections_leave_room_for_every_other_descriptor() -> None:
    assert connection_limit(512, 1_048_576) == 512
    assert connection_limit(512, 256) == 256 - RESERVED_DESCRIPTORS == 128
    assert connection_limit(512, 64) == 8  # a floor, so that a tiny limit still serves


def test_a_kind_of_connection_error_is_logged_once_a_second_with_the_count_left_out() -> None:
    now = [100.0]
    log = ConnectionLog(clock=lambda: now[0])
    kind = "event=connection_closed reason=connection_limit"
    passed = [log.filter(record("exporter.server", kind)) for _ in range(5)]
    assert passed == [True, False, False, False, False]
    assert log.filter(record("exporter.server", "event=connection_closed reason=header_timeout"))
    now[0] += 1.0
    later = record("exporter.server", kind)
    assert log.filter(later)
    assert later.getMessage() == f"{kind} (4 more like it not logged)"


def test_a_line_too_long_is_named_without_the_bytes_of_the_line() -> None:
    refused = LineTooLong("/summary?token=s3cret" + "a" * 9000, "8190")
    line = record("aiohttp.server", "Error handling request from %s", refused)
    assert ConnectionLog().filter(line)
    assert "s3cret" not in line.getMessage()
    assert line.getMessage() == "event=bad_request problem='Got more than 8190 bytes when reading'"


def test_a_request_aiohttp_refused_is_one_warning_line_naming_the_problem_only() -> None:
    refused = BadHttpMessage("Invalid header value char:\n\n  b'Authorization: Bearer s3cret'")
    line = record("aiohttp.server", "Error handling request from %s", refused)
    assert ConnectionLog().filter(line)
    assert (line.levelname, line.exc_info) == ("WARNING", None)
    assert line.getMessage() == "event=bad_request problem='Invalid header value char'"


def test_logs_of_the_exporters_own_work_are_never_held_back() -> None:
    log = ConnectionLog()
    failed = [record("exporter.refresher", "event=query_failed") for _ in range(3)]
    assert all(log.filter(line) for line in failed)
    error = record("exporter.app", "event=request_failed", ValueError("bug"))
    assert log.filter(error)
    assert error.exc_info is not None
    assert error.exc_info[0] is ValueError


class Socket(asyncio.Transport):
    """The transport a guarded connection is made on, as far as the guard looks at it."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None
        self.aborted = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def abort(self) -> None:
        self.aborted = True


def guarded_connection(header_timeout: float = 60.0) -> tuple[Connection, Socket]:
    guard = ConnectionGuard(limit=8, header_timeout=header_timeout)
    connection, transport = Connection(guard, asyncio.Protocol()), Socket()
    transport.set_protocol(connection)
    connection.connection_made(transport)
    return connection, transport


async def test_a_connection_cannot_be_shed_while_a_route_answers_its_request() -> None:
    connection, transport = guarded_connection()
    sheddable_while_answering = []

    async def handler(request: web.Request) -> web.Response:
        sheddable_while_answering.append(connection.sheddable)
        return web.Response()

    await answering(handler)(make_mocked_request("GET", "/summary", transport=transport))
    assert sheddable_while_answering == [False]
    assert (connection.sheddable, connection.answering, connection.answered) == (True, 0, 1)


async def test_a_request_answered_with_an_error_leaves_its_connection_idle() -> None:
    connection, transport = guarded_connection()

    async def handler(request: web.Request) -> web.Response:
        raise InvalidRequest("unknown parameters ['x']")

    answer = await answering(handler)(make_mocked_request("GET", "/summary", transport=transport))
    assert isinstance(answer, web.Response)
    assert isinstance(answer.body, bytes)
    assert (answer.status, json.loads(answer.body)) == (400, {"error": "unknown parameters ['x']"})
    assert (connection.sheddable, connection.answered) == (True, 1)


async def test_only_a_connection_without_a_request_is_closed_at_the_header_timeout() -> None:
    _, silent_socket = guarded_connection(header_timeout=0.05)
    _, served_socket = guarded_connection(header_timeout=0.05)

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    await answering(handler)(make_mocked_request("GET", "/summary", transport=served_socket))
    await asyncio.sleep(0.2)
    assert (silent_socket.aborted, served_socket.aborted) == (True, False)


async def accepting(guard: ConnectionGuard, clients: int) -> tuple[asyncio.Task[None], list[int]]:
    """`clients` connections waiting in a loopback listen queue, then the guard accepting
    them: the task, and how many it held open at each of its first loop turns."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    waiting = [socket.create_connection(listener.getsockname()) for _ in range(clients)]
    task = asyncio.create_task(guard.accept(listener, asyncio.Protocol))
    held = []
    for _ in range(20):
        await asyncio.sleep(0)
        held.append(guard.open)
    task.add_done_callback(lambda _: close(*waiting, listener))
    return task, held


def close(*sockets: socket.socket) -> None:
    for one in sockets:
        one.close()


async def test_a_burst_of_clients_waiting_is_accepted_in_one_go() -> None:
    task, held = await accepting(ConnectionGuard(limit=100, header_timeout=60.0), clients=50)
    task.cancel()
    assert held[2] == 50  # one at a time, it would have taken some 100 turns


async def test_a_burst_of_clients_never_holds_more_than_the_limit() -> None:
    task, held = await accepting(ConnectionGuard(limit=8, header_timeout=60.0), clients=30)
    task.cancel()
    assert max(held) == 8
