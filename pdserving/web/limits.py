"""Admission control: bounded work in progress, so a burst is refused instead of piling up.

At most ``max_in_flight`` jobs run at once (each in a worker thread) and at most ``max_queue``
more requests wait; any request beyond that is answered 503 at once. A job whose request has
timed out keeps its slot until its thread really finishes: a thread cannot be stopped, and
counting it keeps the number of busy threads (and their memory) bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Callable, Iterator, TypeVar

from starlette.concurrency import run_in_threadpool

from pdserving.errors import Unavailable

T = TypeVar("T")


class Admission:
    def __init__(self, max_in_flight: int, max_queue: int, retry_after: float = 1.0):
        if max_in_flight < 1 or max_queue < 0:
            raise ValueError("max_in_flight must be >= 1 and max_queue >= 0")
        self.capacity = max_in_flight + max_queue
        self.retry_after = retry_after
        self.admitted = 0  # requests holding a ticket
        self.waiting = 0   # of those, waiting for a processing slot
        self.running = 0   # jobs in a worker thread, including those whose request timed out
        self._slots = asyncio.Semaphore(max_in_flight)
        self._jobs: set[asyncio.Future] = set()  # strong references while they run

    @contextlib.contextmanager
    def ticket(self) -> Iterator[None]:
        """A place in line for one request; Unavailable at once when there is none."""
        if self.admitted >= self.capacity:
            raise Unavailable(f"server busy: {self.admitted} requests already admitted, "
                              "retry later", self.retry_after)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread once a slot is free. Cancelling the caller (a timeout)
        abandons the wait for the result, never the thread or its slot."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        job = asyncio.ensure_future(run_in_threadpool(fn))
        self._jobs.add(job)
        job.add_done_callback(self._release)
        return await asyncio.shield(job)

    def _release(self, job: asyncio.Future) -> None:
        self._jobs.discard(job)
        self.running -= 1
        self._slots.release()
        if not job.cancelled():
            job.exception()  # retrieved: an abandoned job's error is not "never retrieved"
