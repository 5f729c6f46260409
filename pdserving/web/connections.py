"""Idle and slow clients cannot lock an HTTP port (docs/design.md §2.9).

uvicorn keeps a connection for as long as its client likes while it waits for a request's head:
its keep-alive timer starts only after a response, and stops at the first byte of the next
request. A client that connects and sends nothing, or half a header, is held for ever, and a
few thousand of them use up the process's file descriptors. Our protocol adds two bounds:

- the head of each request (the first on a connection, and each next one after a response) must
  arrive within ``HEAD_TIMEOUT_S``, or the connection is closed;
- at most ``MAX_CONNECTIONS`` are kept: a new connection beyond that closes the one that has
  waited longest for a request head, so a flood pushes out its own oldest members, not
  newcomers. Connections with a request in progress are never shed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 10.0  # from connecting (or from the last response) to a request's full head
MAX_CONNECTIONS = 1000  # kept per server; beyond that the longest-idle one is shed


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request heads and a cap on idle connections."""

    head_timeout = HEAD_TIMEOUT_S
    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._await_head()
        if len(self.connections) > self.max_connections:
            shed_oldest_idle(self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._served:  # a new request's head arrived
            self._stop_head_timer()

    def on_response_complete(self) -> None:
        self._await_head()  # before uvicorn reads a pipelined request that may follow
        super().on_response_complete()

    @property
    def idle(self) -> bool:
        """Waiting for a request's head (a request in progress is not idle)."""
        return self._head_timer is not None

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._served = self.cycle
        self.idle_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        self.transport.close()


def shed_oldest_idle(connections: set) -> None:
    """Close the connection that has waited longest for a request head, if any is waiting."""
    waiting = [c for c in connections if getattr(c, "idle", False) and not c.transport.is_closing()]
    if waiting:
        oldest = min(waiting, key=lambda c: c.idle_since)
        oldest._stop_head_timer()
        oldest.transport.close()
