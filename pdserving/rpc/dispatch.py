"""One public port for the model server's two protocols: gRPC and HTTP/1.1
(docs/design.md §4.4).

grpcio's server speaks only HTTP/2 and cannot adopt a connection accepted elsewhere, so the
dispatcher owns the public listening socket. It reads the first bytes of each connection (the
HTTP/2 client preface means gRPC, anything else HTTP/1.1) and relays the connection, those bytes
first and all unchanged, to the gRPC server or the HTTP app, each listening on a unix socket.
The bytes move with splice(2) through a pipe: the kernel passes them from socket to socket, so
an 11 MB tensor is never copied through Python, and a relay thread holds the GIL only between
system calls. How long a connection may take to say where it goes: docs/design.md §2.9.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import selectors
import socket
import threading
import time

from pdserving.net import raise_fd_limit
from pdserving.tls import ALPN_H2, ALPN_HTTP1, alpn_offered

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what every HTTP/2 (gRPC) client sends first
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS connection (a handshake record)
HEAD_END = re.compile(rb"\n\r?\n")  # the blank line that ends an HTTP/1.1 request head
MAX_HEAD = 64 << 10  # an HTTP head this long goes on unfinished (the HTTP side refuses it)
HEAD_TIMEOUT_S = 10  # from connecting to a gRPC preface or a whole HTTP head
MAX_PENDING = 1000  # connections awaiting their first bytes; beyond, the oldest is dropped
MAX_CONNECTIONS = 256  # relayed at once; beyond, the one idle longest is ended
PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged pipe (fs.pipe-max-size)
# A unix socket's send buffer is all that holds bytes on their way to the server (the default,
# 208 kB, stalls an 11 MB request every few chunks); the kernel caps it at net.core.wmem_max.
UNIX_SNDBUF = 4 << 20


class Dispatcher:
    """Accepts on ``listener`` (bound, not yet listening) and relays each connection to the
    unix socket ``grpc_path`` or ``http_path`` by its protocol.

    One thread holds every connection until its first bytes tell where it goes: a gRPC preface,
    or a whole HTTP request head (so a client holding half a head costs a file descriptor, not
    a thread). Clients silent or slow past ``head_timeout`` are dropped, and a flood of them
    beyond ``max_pending`` drops its own oldest members, not newcomers. A routed connection gets
    a relay (two threads); beyond ``max_connections`` the relay idle longest is ended.
    """

    def __init__(self, listener: socket.socket, grpc_path: str, http_path: str,
                 max_connections: int = MAX_CONNECTIONS, max_pending: int = MAX_PENDING,
                 head_timeout: float = HEAD_TIMEOUT_S, tls: bool = False):
        self.listener = listener
        self.tls = tls
        self.grpc_path = grpc_path
        self.http_path = http_path
        self.max_connections = max_connections
        self.max_pending = max_pending
        self.head_timeout = head_timeout
        self._relays: dict[Relay, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._wake, self._waker = socket.socketpair()
        self._acceptor = threading.Thread(target=self._serve, name="pdserving-dispatch",
                                          daemon=True)

    def start(self) -> "Dispatcher":
        raise_fd_limit()
        self.listener.listen(socket.SOMAXCONN)
        self.listener.setblocking(False)
        self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop accepting and drop connections not yet routed; relayed ones go on (calls in
        flight finish)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._waker.send(b"\0")
        if self._acceptor.is_alive():
            self._acceptor.join()
        self.listener.close()
        self._wake.close()
        self._waker.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting and end every relayed connection."""
        self.close()
        with self._lock:
            relays = dict(self._relays)
        for relay in relays:
            relay.end()
        for thread in relays.values():
            thread.join(timeout)

    def _serve(self) -> None:
        pending: dict[socket.socket, Pending] = {}  # in the order they came
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            selector.register(self._wake, selectors.EVENT_READ)
            try:
                while not self._closed:
                    first = next(iter(pending.values()), None)
                    wait = None if first is None else max(first.deadline - time.monotonic(), 0)
                    for key, _ in selector.select(wait):
                        if key.fileobj is self.listener:
                            self._accept(selector, pending)
                        elif key.fileobj is not self._wake:
                            self._read(selector, pending, pending[key.fileobj])
                    now = time.monotonic()
                    while pending and (first := next(iter(pending.values()))).deadline <= now:
                        self._drop(selector, pending, first.conn)
            finally:
                for conn in list(pending):
                    self._drop(selector, pending, conn)

    def _accept(self, selector: selectors.BaseSelector, pending: dict) -> None:
        for _ in range(64):  # then let the waiting connections have a turn
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as e:  # out of file descriptors: free the oldest waiting one's
                log.warning("model server: accept failed: %s", e)
                if pending and e.errno in (errno.EMFILE, errno.ENFILE):
                    self._drop(selector, pending, next(iter(pending)))
                else:
                    time.sleep(0.1)
                return
            conn.setblocking(False)
            pending[conn] = Pending(conn, time.monotonic() + self.head_timeout)
            selector.register(conn, selectors.EVENT_READ)
            if len(pending) > self.max_pending:
                self._drop(selector, pending, next(iter(pending)))

    def _read(self, selector: selectors.BaseSelector, pending: dict, waiting: Pending) -> None:
        try:
            data = waiting.conn.recv(MAX_HEAD)
        except BlockingIOError:
            return
        except OSError:  # reset by the client
            data, waiting.head = b"", bytearray()
        new = len(waiting.head)
        waiting.head += data
        path = self.route(waiting.head, ended=not data, new=new)
        if path is None and data:
            return  # more to come
        selector.unregister(waiting.conn)
        del pending[waiting.conn]
        if not path:
            waiting.conn.close()
        else:
            self._relay(Relay(waiting.conn, self, path, bytes(waiting.head), ended=not data))

    @staticmethod
    def _drop(selector: selectors.BaseSelector, pending: dict, conn: socket.socket) -> None:
        selector.unregister(conn)
        del pending[conn]
        conn.close()

    def route(self, head: bytes | bytearray, ended: bool = False, new: int = 0) -> str | None:
        """The unix socket for a connection that began with ``head``; None while it takes
        more bytes to tell (a client that has ``ended`` sending gets its answer now); "" for
        one no server here speaks to. ``head[:new]`` was seen before: past the preface's
        length it held no blank line, so only what follows is searched again (a search of the
        whole head at each byte a slow client sends would be quadratic)."""
        if self.tls and head:
            if not head.startswith(TLS_HANDSHAKE):
                return ""
            offered = alpn_offered(head)
            if offered is None and len(head) < MAX_HEAD and not ended:
                return None
            grpc = offered and ALPN_H2 in offered and ALPN_HTTP1 not in offered
            return self.grpc_path if grpc else self.http_path
        if head.startswith(PREFACE):
            return self.grpc_path
        searched = new - 2 if new > len(PREFACE) else 0  # a blank line may end in new bytes
        if not head or (PREFACE.startswith(head) or not HEAD_END.search(head, searched)) \
                and len(head) < MAX_HEAD and not ended:
            return None
        return self.http_path

    def _relay(self, relay: Relay) -> None:
        with self._lock:
            live = [r for r in self._relays if not r.ended]
            if len(live) >= self.max_connections:
                min(live, key=lambda r: r.last_active).end()
            thread = threading.Thread(target=self._run, args=(relay,), name="pdserving-relay",
                                      daemon=True)
            self._relays[relay] = thread
        thread.start()

    def _run(self, relay: Relay) -> None:
        try:
            relay.run()
        finally:
            with self._lock:
                del self._relays[relay]


class Pending:
    """A connection not yet routed: the bytes it has sent, and when it must be done."""

    __slots__ = ("conn", "deadline", "head")

    def __init__(self, conn: socket.socket, deadline: float):
        self.conn = conn
        self.deadline = deadline
        self.head = bytearray()


class Relay:
    """One client connection and its upstream one, relayed both ways until either side ends.

    The bytes the dispatcher read to route the connection go first. A client's half-close
    (request sent, reply awaited) is passed on; the upstream server's end of the connection
    ends the relay, as neither gRPC nor HTTP talks on after the server's close.
    """

    def __init__(self, client: socket.socket, dispatcher: Dispatcher, path: str,
                 head: bytes = b"", ended: bool = False):
        self.client = client
        self.dispatcher = dispatcher
        self.path = path
        self.head = head
        self.client_ended = ended
        self.upstream: socket.socket | None = None
        self.last_active = time.monotonic()
        self.ended = False
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            self.client.setblocking(True)  # the relay's threads wait in splice(2)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # gRPC's own
            if self._connect():
                self.upstream.sendall(self.head)
                if self.client_ended:
                    self.upstream.shutdown(socket.SHUT_WR)
                    self._pump(self.upstream, self.client)
                else:
                    back = threading.Thread(target=self._pump, args=(self.upstream, self.client),
                                            name="pdserving-relay", daemon=True)
                    back.start()
                    self._pump(self.client, self.upstream)
                    back.join()
        except OSError:
            pass  # a client that went away, or a server stopping: nothing to tell anyone
        finally:
            self.end()
            self.client.close()
            if self.upstream is not None:
                self.upstream.close()

    def end(self) -> None:
        """Wake both directions (blocked reads return EOF) so the relay's threads finish."""
        with self._lock:
            self.ended = True
            for sock in (self.client, self.upstream):
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed by the peer

    def _connect(self) -> bool:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            if self.ended:
                upstream.close()
                return False
            self.upstream = upstream
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SNDBUF)
        upstream.connect(self.path)
        return True

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Move bytes ``src`` -> ``dst`` until ``src`` ends, then pass the end on."""
        read, write = os.pipe()
        try:
            try:
                size = fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:  # over the user's pipe memory (fs.pipe-user-pages-soft)
                size = fcntl.fcntl(write, fcntl.F_GETPIPE_SZ)
            while n := os.splice(src.fileno(), write, size):
                self.last_active = time.monotonic()
                while n:
                    n -= os.splice(read, dst.fileno(), n)
            if src is self.client:
                dst.shutdown(socket.SHUT_WR)
                return
        except OSError:
            pass
        finally:
            os.close(read)
            os.close(write)
        self.end()  # the server closed, or either side failed
