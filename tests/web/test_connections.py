"""The HTTP side's bounds on idle and slow clients (pdserving.web.connections), on a small app
under uvicorn with our protocol: heads late are cut off, requests in progress are not, and a
flood of idle connections sheds its own oldest members."""

import socket
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pdserving.web.connections import GuardedH11Protocol
from tests.helpers.servers import serve

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HALF = b"GET / HTTP/1.1\r\nHost: x\r\n"  # no end of head


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse("got " + (await request.body()).decode())


@pytest.fixture
def address(monkeypatch):
    """A server whose heads are due in 1 s and which keeps 3 connections."""
    monkeypatch.setattr(GuardedH11Protocol, "head_timeout", 1.0)
    monkeypatch.setattr(GuardedH11Protocol, "max_connections", 3)
    with serve(Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])) as base:
        yield "127.0.0.1", int(base.rsplit(":", 1)[1])


def answer(sock: socket.socket) -> bytes:
    """One response's bytes (ours are small: one read after the status line comes)."""
    data = sock.recv(65536)
    while b"\r\n\r\n" not in data or not data.rstrip().endswith((b"got", b"got x")):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data


def closed_within(sock: socket.socket, low: float, high: float) -> bool:
    started = time.monotonic()
    try:
        end = sock.recv(1) == b""
    except ConnectionResetError:
        end = True
    return end and low < time.monotonic() - started < high


@pytest.mark.parametrize("first", [b"", HALF])
def test_a_head_not_there_in_time_is_cut_off(address, first):
    with socket.create_connection(address, timeout=10) as slow:
        slow.sendall(first)
        assert closed_within(slow, 0.5, 3)


def test_the_next_head_on_a_kept_alive_connection_is_due_too(address):
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(GET)
        assert answer(s).startswith(b"HTTP/1.1 200")
        s.sendall(HALF)
        assert closed_within(s, 0.5, 3)


def test_a_slow_body_after_a_whole_head_is_not_cut_off(address):
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
        time.sleep(1.5)
        s.sendall(b"x")
        assert answer(s).endswith(b"got x")


def test_idle_connections_beyond_the_cap_shed_the_oldest_not_a_newcomer(address):
    busy = socket.create_connection(address, timeout=10)
    busy.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")  # in progress
    time.sleep(0.2)
    idle = []
    try:
        for _ in range(4):
            idle.append(socket.create_connection(address, timeout=10))
            time.sleep(0.1)  # accepted in this order
        with socket.create_connection(address, timeout=10) as newcomer:
            newcomer.sendall(GET)
            assert answer(newcomer).startswith(b"HTTP/1.1 200")
        assert all(closed_within(s, 0, 0.5) for s in idle[:3])
        busy.sendall(b"x")
        assert answer(busy).endswith(b"got x")
    finally:
        busy.close()
        for s in idle:
            s.close()
