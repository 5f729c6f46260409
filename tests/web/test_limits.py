"""Admission control: unit checks of ``Admission``, then overload and timeouts on real servers."""

import asyncio
import re
import threading
import time

import httpx
import psutil
import pytest

from pdserving.errors import Unavailable
from pdserving.net import wait_until
from pdserving.web.app import WebSettings, create_app
from pdserving.web.limits import Admission
from tests.helpers.servers import ScriptServer, body, predict_url, serve


@pytest.fixture
def admission_of():
    """Makes Admissions and stops their worker threads after the test."""
    made = []

    def make(**settings) -> Admission:
        made.append(Admission(**settings))
        return made[-1]

    yield make
    for admission in made:
        admission.close()


def test_tickets_beyond_capacity_are_refused_at_once(admission_of):
    admission = admission_of(max_in_flight=1, max_queue=1, retry_after=2)
    with admission.ticket(), admission.ticket():
        with pytest.raises(Unavailable) as refused:
            with admission.ticket():
                pass
        assert refused.value.retry_after == 2
    with admission.ticket():  # released again
        assert admission.admitted == 1


def test_at_most_max_in_flight_jobs_run_at_once(admission_of):
    admission = admission_of(max_in_flight=2, max_queue=10)
    lock, running, peak = threading.Lock(), [0], [0]

    def job():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return "done"

    async def burst():
        return await asyncio.gather(*[admission.run(job) for _ in range(6)])

    assert asyncio.run(burst()) == ["done"] * 6
    assert peak[0] == 2
    assert admission.running == admission.waiting == 0


def test_a_timed_out_job_keeps_its_slot_until_its_thread_finishes(admission_of):
    admission = admission_of(max_in_flight=1, max_queue=1)
    release = threading.Event()

    async def scenario():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(admission.run(release.wait), 0.05)
        assert admission.running == 1  # the thread still works: its slot stays taken
        second = asyncio.ensure_future(admission.run(lambda: "second"))
        await asyncio.sleep(0.05)
        assert not second.done() and admission.waiting == 1
        release.set()
        assert await second == "second"
        assert admission.running == admission.waiting == 0

    asyncio.run(scenario())


def test_jobs_always_run_on_the_same_long_lived_threads(admission_of):
    """Paddle's oneDNN state is per thread: the model must not see ever-new threads."""
    admission = admission_of(max_in_flight=2, max_queue=0)

    async def idents(jobs: int) -> set[int]:
        return set(await asyncio.gather(*[admission.run(threading.get_ident)
                                          for _ in range(jobs)]))

    async def scenario():
        seen: set[int] = set()
        for _ in range(5):  # with new threads per job (or per burst) this grows past 2
            seen |= await idents(20)
            await asyncio.sleep(0.05)
        assert 1 <= len(seen) <= 2

    asyncio.run(scenario())


def test_errors_of_the_job_reach_the_caller(admission_of):
    admission = admission_of(max_in_flight=1, max_queue=0)

    async def scenario():
        with pytest.raises(ZeroDivisionError):
            await admission.run(lambda: 1 / 0)
        assert await admission.run(lambda: 7) == 7

    asyncio.run(scenario())


class Sleepy:
    name = "sleepy"
    outputs = ("res",)
    result_type = dict
    delay = 0.0

    def __call__(self, images, fetch):
        time.sleep(self.delay)
        return {"res": ["ok"]}

    def ready(self):
        return None


def in_flight(base: str) -> float:
    text = httpx.get(base + "/metrics").text
    return float(re.search(r'pdserving_requests_in_flight\{service="sleepy"\} (\S+)',
                           text).group(1))


def test_timeout_is_a_503_and_the_slot_comes_back_when_the_work_ends():
    handler = Sleepy()
    handler.delay = 3.0  # margin for a loaded machine: the answer must come well before the end
    app = create_app(handler, WebSettings(max_in_flight=1, max_queue=1, request_timeout=0.3))
    with serve(app) as base:
        start = time.monotonic()
        r = httpx.post(predict_url(base), json=body(), timeout=10)
        assert time.monotonic() - start < 2
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["err_msg"] == "request timed out after 0.3 s"
        assert in_flight(base) == 1  # the handler still runs in its thread
        handler.delay = 0
        wait_until(lambda: in_flight(base) == 0, 10, "the slot back (else it leaked)")
        r = httpx.post(predict_url(base), json=body(), timeout=10)
        assert r.status_code == 200 and r.json() == {"result": {"res": ["ok"]}}


async def _burst(base: str, requests: int, payload: bytes, rss) -> tuple[list, list, int]:
    """``requests`` posts at once while /health is polled; the statuses, health latencies and
    the server's peak RSS seen meanwhile."""
    limits = httpx.Limits(max_connections=requests + 1)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        posts = asyncio.gather(*[client.post(predict_url(base), content=payload,
                                             headers={"content-type": "application/json"})
                                 for _ in range(requests)])
        posts = asyncio.ensure_future(posts)
        health, peak = [], rss()
        while not posts.done():
            start = time.monotonic()
            r = await client.get(base + "/health")
            health.append((r.status_code, time.monotonic() - start))
            peak = max(peak, rss())
            await asyncio.sleep(0.02)
        return await posts, health, peak


def test_a_burst_over_the_limits_gets_200_or_503_and_memory_stays_bounded(model_root):
    """100 concurrent 4 MiB requests against max_in_flight=1, max_queue=2: bodies of refused
    requests are never read, so the server's memory cannot grow with the burst."""
    pad = b" " * (4 << 20)
    payload = b'{"pad": "' + pad + b'", ' + httpx.Request("POST", "/", json=body()).content[1:]
    settings = {"max_in_flight": 1, "max_queue": 2}
    with ScriptServer(model_root=str(model_root), settings=settings) as server:
        assert httpx.post(predict_url(server.base), content=payload, timeout=30).status_code \
            == 200  # warm: the first call sizes the model's buffers
        process = psutil.Process(server.proc.pid)
        before = process.memory_info().rss
        responses, health, peak = asyncio.run(
            _burst(server.base, 100, payload, lambda: process.memory_info().rss))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses
        assert all("retry-after" in r.headers for r in responses if r.status_code == 503)
        assert health and all(status == 200 and took < 2 for status, took in health)
        assert peak - before < 200 << 20, f"RSS grew by {(peak - before) >> 20} MiB"
        r = httpx.post(predict_url(server.base), json=body(), timeout=30)
        assert r.status_code == 200 and "HELLO" in "".join(r.json()["result"]["res"])
