"""The dispatcher alone, in front of two stand-in servers on unix sockets: routing by the first
bytes, exact bytes both ways (large ones too), half-close, silent and surplus clients, stop."""

import os
import socket
import threading
import time

import pytest

from pdserving.net import bind, wait_until
from pdserving.rpc.dispatch import PREFACE, Dispatcher


class Upstream:
    """A server on a unix socket that reads a connection to its end, then answers its name
    and the bytes it got, and closes (as a server ends a connection)."""

    def __init__(self, path: str, name: bytes):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            got = bytearray()
            try:
                while chunk := conn.recv(1 << 20):
                    got += chunk
                conn.sendall(self.name + got)
            except OSError:
                pass  # the relay was ended (the stop test)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join()


@pytest.fixture
def start(tmp_path):
    """``start(**kw)``: a dispatcher on a free 127.0.0.1 port; yields its address."""
    upstreams = [Upstream(str(tmp_path / "g"), b"grpc:"), Upstream(str(tmp_path / "h"), b"http:")]
    dispatchers = []

    def started(**kw) -> tuple[str, int]:
        d = Dispatcher(bind("127.0.0.1", 0), str(tmp_path / "g"), str(tmp_path / "h"), **kw)
        dispatchers.append(d.start())
        return d.listener.getsockname()

    yield started
    for d in dispatchers:
        d.stop()
    for u in upstreams:
        u.close()


def exchange(address, *parts: bytes, pause: float = 0) -> bytes:
    """Send ``parts`` (``pause`` s apart), half-close, and read the answer to its end."""
    with socket.create_connection(address, timeout=10) as s:
        for part in parts:
            s.sendall(part)
            time.sleep(pause)
        s.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: s.recv(1 << 20), b""))


HTTP = b"POST /GeneralModelService/inference HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize("parts,route", [
    ((PREFACE + b"\0\0\0\4\0\0\0\0\0",), b"grpc:"),
    ((PREFACE[:2], PREFACE[2:] + b"frames"), b"grpc:"),  # a preface in pieces is still one
    ((HTTP,), b"http:"),
    ((b"PRI * HTTP/1.1\r\n\r\n",), b"http:"),
])
def test_connection_goes_where_its_first_bytes_say_unchanged(start, parts, route):
    assert exchange(start(), *parts, pause=0.2) == route + b"".join(parts)


def test_a_request_shorter_than_the_preface_waits_for_nothing(start):
    started = time.monotonic()
    assert exchange(start(), b"GET / HTTP/1.0\r\n\r\n") == b"http:GET / HTTP/1.0\r\n\r\n"
    assert time.monotonic() - started < 1


def test_large_bytes_arrive_exactly_both_ways(start):
    data = PREFACE + os.urandom(24 << 20)
    assert exchange(start(), data) == b"grpc:" + data


def closed(sock: socket.socket) -> bool:
    """The server closed ``sock``: an end, or a reset if our bytes came after its close."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


HALF = b"POST /GeneralModelService/inference HTTP/1.1\r\nHost: x\r\n"  # no end of head


@pytest.mark.parametrize("first", [b"", HALF, PREFACE[:10]])
def test_a_silent_or_slow_client_is_dropped_and_blocks_no_one(start, first):
    address = start(head_timeout=1)
    with socket.create_connection(address, timeout=10) as slow:
        slow.sendall(first)
        assert exchange(address, HTTP) == b"http:" + HTTP
        started = time.monotonic()
        assert slow.recv(1) == b""
        assert 0.5 < time.monotonic() - started < 3


def test_bytes_without_a_head_are_relayed_when_the_client_ends(start):
    assert exchange(start(), b"junk") == b"http:junk"


def test_a_flood_of_waiting_clients_drops_its_oldest_not_a_newcomer(start):
    address = start(max_pending=3)
    flood = [socket.create_connection(address, timeout=10) for _ in range(5)]
    try:
        for s in flood:
            s.sendall(HALF)
        assert exchange(address, HTTP) == b"http:" + HTTP
        assert all(closed(s) for s in flood[:3])  # the two oldest, then one more for ours
    finally:
        for s in flood:
            s.close()


def test_relays_over_the_bound_end_the_one_idle_longest(start):
    address = start(max_connections=2)
    held = [socket.create_connection(address, timeout=10) for _ in range(2)]
    try:
        for s in held:
            s.sendall(PREFACE)  # relayed, the upstream waiting for more
            time.sleep(0.2)
        held[1].sendall(b"frame")  # the newer one is the more recent too
        assert exchange(address, HTTP) == b"http:" + HTTP
        assert held[0].recv(1) == b""
        held[1].shutdown(socket.SHUT_WR)
        assert held[1].recv(1 << 20) == b"grpc:" + PREFACE + b"frame"
    finally:
        for s in held:
            s.close()


def test_an_upstream_not_listening_closes_the_client_only(start, tmp_path):
    address = start()
    os.rename(tmp_path / "h", tmp_path / "h.away")
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(HTTP)
        try:  # closed with our bytes unread: a reset, or an end if they had not yet arrived
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    os.rename(tmp_path / "h.away", tmp_path / "h")
    assert exchange(address, HTTP) == b"http:" + HTTP


def test_stop_ends_relays_and_their_threads_and_the_port(tmp_path):
    before = set(threading.enumerate())
    upstream = Upstream(str(tmp_path / "g"), b"grpc:")
    d = Dispatcher(bind("127.0.0.1", 0), str(tmp_path / "g"), str(tmp_path / "g")).start()
    address = d.listener.getsockname()
    mid_call = socket.create_connection(address, timeout=10)
    mid_call.sendall(PREFACE)  # relayed, the upstream waiting for more
    wait_until(lambda: len(d._relays) == 1, 5, "relayed")
    d.stop()
    assert mid_call.recv(1) == b""
    mid_call.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=1)
    upstream.close()
    wait_until(lambda: set(threading.enumerate()) <= before, 5, "threads ended")
