"""Ports and waiting: the one place that binds a listening address, picks a free port, and
waits for something to come up (servers, their children, the tests and the benchmark)."""

from __future__ import annotations

import resource
import socket
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class PortInUse(OSError):
    """A server could not bind its address."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon), not listening yet.

    SO_REUSEADDR, as gRPC and uvicorn bind: a restart is not refused over connections left in
    TIME_WAIT, but a port another server listens on is. The protocol is named (IPPROTO_TCP, not
    0): asyncio sets TCP_NODELAY on accepted connections only then, and without it each
    keep-alive response waited ~40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def free_port(start: int | None = None, host: str = "127.0.0.1") -> int:
    """A port nothing listens on: the first from ``start`` (the original's rule for the
    internal model server's port), or with no ``start`` one the kernel picks."""
    if start is None:
        with bind(host, 0) as s:
            return s.getsockname()[1]
    for port in range(start, 65536):
        try:
            bind(host, port).close()
        except PortInUse:
            continue
        return port
    raise PortInUse(f"no free port on {host} from {start}")


def wait_until(condition: Callable[[], T], timeout: float, what: str = "condition",
               interval: float = 0.05) -> T:
    """Call ``condition`` every ``interval`` s until it returns something true, and return
    that; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:g} s")
        time.sleep(interval)


def raise_fd_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit, as Go's runtime does: the
    usual soft default, 1024, is below what a server's connection caps allow. The new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # an unlimited hard limit above the kernel's nr_open
            pass
    return soft
