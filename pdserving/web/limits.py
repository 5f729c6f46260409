"""The limits every HTTP side applies: admission control (bounded work in progress, so a burst
is refused instead of piling up) and the body size (``read_body``).

At most ``max_in_flight`` jobs run at once and at most ``max_queue`` more requests wait; any
request beyond that is answered 503 at once. A job whose request has timed out keeps its slot
until it really finishes: a thread cannot be stopped, and counting it keeps the number of busy
threads (and their memory) bounded.

Jobs run on ``max_in_flight`` worker threads that live as long as the app: the number of threads
doing work (and the memory they hold) is fixed, whatever the load. The threads are daemons, so a
job stuck past shutdown does not hold the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from typing import Callable, Iterator, TypeVar

from starlette.requests import ClientDisconnect, Request

from pdserving.errors import BadRequest, PayloadTooLarge, Unavailable

T = TypeVar("T")
_Job = tuple[Callable[[], object], concurrent.futures.Future]


class Admission:
    def __init__(self, max_in_flight: int, max_queue: int, retry_after: float = 1.0):
        if max_in_flight < 1 or max_queue < 0:
            raise ValueError("max_in_flight must be >= 1 and max_queue >= 0")
        self.capacity = max_in_flight + max_queue
        self.retry_after = retry_after
        self.admitted = 0  # requests holding a ticket
        self.waiting = 0   # of those, waiting for a processing slot
        self.running = 0   # jobs on a worker thread, including those whose request timed out
        self._slots = asyncio.Semaphore(max_in_flight)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"pdserving-worker-{i}")
                         for i in range(max_in_flight)]
        for thread in self._threads:
            thread.start()

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
        """``fn()`` on a worker thread once a slot is free. Cancelling the caller (a timeout)
        abandons the wait for the result, never the job or its slot."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, future))
        job = asyncio.wrap_future(future)
        job.add_done_callback(self._release)
        return await asyncio.shield(job)

    def close(self) -> None:
        """Let the worker threads end once their current job is done."""
        for _ in self._threads:
            self._queue.put(None)

    def _release(self, job: asyncio.Future) -> None:
        self.running -= 1
        self._slots.release()
        if not job.cancelled():
            job.exception()  # retrieved: an abandoned job's error is not "never retrieved"

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as e:  # the worker must survive whatever the job raises
                    future.set_exception(e)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to be over ``limit``: from Content-Length
    before reading anything, else (chunked) from the bytes counted so far."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("client disconnected before sending the whole body") from None
    return b"".join(chunks)
