"""One public port for the model server's two protocols: gRPC and HTTP/1.1
(docs/design.md §4.4).

grpcio's server speaks only HTTP/2 and cannot adopt a connection accepted elsewhere, so the
dispatcher owns the public listening socket. It peeks at the first bytes of each connection (the
HTTP/2 client preface means gRPC, anything else HTTP/1.1) and relays the connection, unchanged,
to the gRPC server or the HTTP app, each listening on a unix socket. The bytes move with
splice(2) through a pipe: the kernel passes them from socket to socket, so an 11 MB tensor is
never copied through Python, and a relay thread holds the GIL only between system calls.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import threading
import time

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what every HTTP/2 (gRPC) client sends first
PEEK_TIMEOUT_S = 10  # a client silent this long after connecting is dropped
MAX_CONNECTIONS = 256  # relayed at once; beyond that a new connection is closed at once
PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged pipe (fs.pipe-max-size)
# A unix socket's send buffer is all that holds bytes on their way to the server (the default,
# 208 kB, stalls an 11 MB request every few chunks); the kernel caps it at net.core.wmem_max.
UNIX_SNDBUF = 4 << 20


class Dispatcher:
    """Accepts on ``listener`` (bound, not yet listening) and relays each connection to the
    unix socket ``grpc_path`` or ``http_path`` by its protocol."""

    def __init__(self, listener: socket.socket, grpc_path: str, http_path: str,
                 max_connections: int = MAX_CONNECTIONS):
        self.listener = listener
        self.grpc_path = grpc_path
        self.http_path = http_path
        self.max_connections = max_connections
        self._relays: dict[Relay, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="pdserving-dispatch",
                                          daemon=True)

    def start(self) -> "Dispatcher":
        self.listener.listen(socket.SOMAXCONN)
        self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop accepting; relayed connections go on (calls in flight finish)."""
        with self._lock:
            self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (Linux)
        except OSError:
            pass  # never listened
        if self._acceptor.is_alive():
            self._acceptor.join()
        self.listener.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting and end every relayed connection."""
        self.close()
        with self._lock:
            relays = dict(self._relays)
        for relay in relays:
            relay.end()
        for thread in relays.values():
            thread.join(timeout)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError as e:
                with self._lock:
                    if self._closed:
                        return
                # Out of file descriptors: the connection waits in the backlog meanwhile.
                log.warning("model server: accept failed: %s", e)
                time.sleep(0.1)
                continue
            with self._lock:
                if self._closed or len(self._relays) >= self.max_connections:
                    conn.close()
                    continue
                relay = Relay(conn, self)
                thread = threading.Thread(target=self._run, args=(relay,),
                                          name="pdserving-relay", daemon=True)
                self._relays[relay] = thread
            thread.start()

    def _run(self, relay: Relay) -> None:
        try:
            relay.run()
        finally:
            with self._lock:
                del self._relays[relay]

    def route(self, first: bytes) -> str:
        """The unix socket for a connection that began with ``first``."""
        return self.grpc_path if first == PREFACE else self.http_path


class Relay:
    """One client connection and its upstream one, relayed both ways until either side ends.

    A client's half-close (request sent, reply awaited) is passed on; the upstream server's end
    of the connection ends the relay, as neither gRPC nor HTTP talks on after the server's close.
    """

    def __init__(self, client: socket.socket, dispatcher: Dispatcher):
        self.client = client
        self.dispatcher = dispatcher
        self.upstream: socket.socket | None = None
        self._lock = threading.Lock()
        self._ended = False

    def run(self) -> None:
        try:
            first = self._peek()
            if first and self._connect(self.dispatcher.route(first)):
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
            self._ended = True
            for sock in (self.client, self.upstream):
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass  # already closed by the peer

    def _peek(self) -> bytes:
        """The connection's first bytes, left in place for the server that gets them: enough
        to tell the HTTP/2 preface from an HTTP/1.1 request line; b"" if the client is silent."""
        sock = self.client
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", PEEK_TIMEOUT_S, 0))
        try:
            first = sock.recv(len(PREFACE), socket.MSG_PEEK)
            if first and len(first) < len(PREFACE) and PREFACE.startswith(first):
                first = sock.recv(len(PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
        except BlockingIOError:  # SO_RCVTIMEO expired
            return b""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # gRPC's own setting
        return first

    def _connect(self, path: str) -> bool:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            if self._ended:
                upstream.close()
                return False
            self.upstream = upstream
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SNDBUF)
        upstream.connect(path)
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
