"""A flood of half-open connections, from a process of its own:

    python -m harness.connection_flood --port 9199 --connections 356 --seconds 5

Opens `connections` connections to 127.0.0.1:`port`, each sending the start of a request and
never its end, and opens a new one whenever the server closes one, for `seconds`. Prints, as
JSON, how many it opened and how many the server closed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import selectors
import socket
import time

PARTIAL_REQUEST = b"GET /summary HTTP/1.1\r\nHost: flood\r\n"


def flood(port: int, connections: int, seconds: float) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    selector = selectors.DefaultSelector()
    counts = {"opened": 0, "closed_by_server": 0, "most_open": 0}

    def open_one() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE, "connecting")
        counts["opened"] += 1

    for _ in range(connections):
        open_one()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data == "connecting":
                with contextlib.suppress(OSError):  # refused: the next select says so
                    sock.send(PARTIAL_REQUEST)
                selector.modify(sock, selectors.EVENT_READ, "waiting")
                continue
            try:
                answer = sock.recv(4096)
            except OSError:
                answer = b""
            if not answer:  # closed by the server: take its place again
                selector.unregister(sock)
                sock.close()
                counts["closed_by_server"] += 1
                open_one()
        counts["most_open"] = max(counts["most_open"], len(selector.get_map()))
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    arguments = parser.parse_args()
    print(json.dumps(flood(arguments.port, arguments.connections, arguments.seconds)))


if __name__ == "__main__":
    main()
