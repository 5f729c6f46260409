"""The OCR service on Ray Serve, on a real 2-node cluster (``conftest``): the fast service's JSON
for every sample, replicas on both nodes, the web tests' bad inputs, a det replica killed under
load, and rec autoscaling."""

from __future__ import annotations

import base64

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import ray
from ray import serve
from ray.exceptions import RayActorError

from pdserving.net import wait_until
from pdserving.ray_app import APP_NAME, with_deployments
from tests.helpers.requests import (assert_bad_input_refused, assert_error,
                                    assert_good_request_succeeds, each_bad_input)
from tests.helpers.servers import body, predict_url
from tests.ray.conftest import deploy, model_handle

pytestmark = pytest.mark.ray

FETCH = ["res", "dt_boxes", "rec_scores"]


def replicas_of(name: str, count: int, timeout: float = 30) -> dict[str, dict]:
    """What ``count`` replicas of deployment ``name`` report (``ModelReplica.where``), by replica
    id: calls are sent 8 at a time so the router spreads them; a dead replica's are skipped."""
    handle = model_handle(name)
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for response in [handle.where.remote() for _ in range(8)]:
            try:
                where = response.result(timeout_s=timeout)
            except RayActorError:
                continue
            seen[where["replica"]] = where
    return seen


def running(name: str) -> int:
    """Deployment ``name``'s running replicas, as Serve's status reports them."""
    deployment = serve.status().applications[APP_NAME].deployments[name]
    return deployment.replica_states.get("RUNNING", 0)


def test_every_sample_gets_the_fast_services_json(ray_ocr, fast_ocr, samples):
    for name, (data, lines) in samples.items():
        r = httpx.post(predict_url(ray_ocr), json=body(data, fetch=FETCH), timeout=60)
        assert r.status_code == 200, (name, r.text)
        assert r.json() == fast_ocr.post([data], FETCH).json(), name
        assert r.json()["result"]["res"] == lines, name


def test_the_ingress_speaks_paddlex_and_paddlehub_with_the_same_lines(ray_ocr, samples):
    """``POST /ocr`` with a request's own thresholds (they cross to the det replica) and
    PaddleHub's ``/predict/ocr_system`` on the replicas' pipeline."""
    data, lines = next(iter(samples.values()))
    image = base64.b64encode(data).decode()
    pruned = httpx.post(ray_ocr + "/ocr", timeout=60, json={
        "file": image, "visualize": False}).json()["result"]["ocrResults"][0]["prunedResult"]
    own = httpx.post(predict_url(ray_ocr), json=body(data, fetch=FETCH), timeout=60).json()
    assert (pruned["rec_texts"], pruned["rec_polys"]) == (lines, own["result"]["dt_boxes"])
    hub = httpx.post(ray_ocr + "/predict/ocr_system", json={"images": [image]}, timeout=60)
    assert [d["text"] for d in hub.json()["results"][0]] == lines
    strict = httpx.post(ray_ocr + "/ocr", timeout=60, json={
        "file": image, "visualize": False, "textDetBoxThresh": 0.99}).json()
    assert strict["result"]["ocrResults"][0]["prunedResult"]["dt_polys"] == []


def test_det_and_rec_replicas_run_on_both_nodes(ray_ocr, ray_cluster):
    nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(nodes) == 2
    for name in ("det", "rec"):
        seen = replicas_of(name, 2)
        assert len(seen) == 2, seen
        assert {where["node_id"] for where in seen.values()} == nodes, (name, seen)
        assert {where["engine"] for where in seen.values()} == {"openvino"}


@each_bad_input
def test_bad_input_gets_the_plain_services_error(ray_ocr, req, status, message):
    assert_bad_input_refused(ray_ocr, req, status, message)


def test_unknown_path_is_the_plain_services_404(ray_ocr):
    r = httpx.post(ray_ocr + "/predict", json=body())
    assert_error(r, 404, "Not Found: POST /predict")


def test_health_ready_and_metrics_come_from_the_ingress(ray_ocr):
    assert httpx.get(ray_ocr + "/health").json() == {"status": "alive"}
    assert httpx.get(ray_ocr + "/ready").json() == {"status": "ready"}
    text = httpx.get(ray_ocr + "/metrics").text
    for model in ("det", "rec"):
        assert f'pdserving_model_engine_info{{engine="openvino",model="{model}"}} 1.0' in text
        assert f'pdserving_model_inference_seconds_count{{model="{model}"}}' in text
    assert 'route="/ocr/prediction",service="ocr",status="200"' in text


def test_a_det_replica_killed_under_load_costs_at_most_a_few_requests(ray_ocr, samples):
    victim = next(iter(replicas_of("det", 2).values()))
    images = [data for data, _ in samples.values()]
    bodies = [body(images[i % len(images)]) for i in range(40)]
    done, killed_at = [], []
    lock = threading.Lock()

    def post(request: dict) -> httpx.Response:
        r = httpx.post(predict_url(ray_ocr), json=request, timeout=60)
        with lock:
            done.append(r)
            if len(done) == 8:  # a steady load is running: kill while 4 are in flight
                ray.kill(ray.get_actor(victim["actor"], namespace="serve"), no_restart=True)
                killed_at.append(time.monotonic())
        return r

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, bodies))
    assert killed_at
    for r in answers:
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.headers["retry-after"], r.headers
    assert sum(r.status_code != 200 for r in answers) <= 4

    def replaced() -> bool:
        if running("det") != 2:
            return False
        seen = replicas_of("det", 2, timeout=5)
        return len(seen) == 2 and victim["replica"] not in seen

    wait_until(replaced, max(1.0, killed_at[0] + 30 - time.monotonic()),
               "2 healthy det replicas again")
    assert_good_request_succeeds(ray_ocr)


def test_rec_scales_out_on_a_burst_and_back_when_idle(ray_ocr, ray_config, samples):
    """Last in this module: it redeploys rec with autoscaling (1 to 2 replicas)."""
    config = with_deployments(ray_config, rec={
        "num_replicas": None, "max_ongoing_requests": 4, "ray_actor_options": {"num_cpus": 0.5},
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 2,
                               "target_ongoing_requests": 1, "upscale_delay_s": 0,
                               "downscale_delay_s": 2, "look_back_period_s": 2,
                               "metrics_interval_s": 0.5}})
    deploy(config)
    wait_until(lambda: running("rec") == 1, 30, "rec idle at 1 replica")

    images = [data for data, _ in samples.values()]
    stop = threading.Event()

    def burst(worker: int) -> list[int]:
        statuses = []
        for i in range(30):  # bounded: at most 120 requests in all
            if stop.is_set():
                break
            r = httpx.post(predict_url(ray_ocr), json=body(images[(worker + i) % len(images)]),
                           timeout=60)
            statuses.append(r.status_code)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(burst, w) for w in range(4)]
        try:
            wait_until(lambda: running("rec") == 2, 60, "rec scaled out to 2 replicas")
        finally:
            stop.set()
        statuses = [s for f in futures for s in f.result()]
    assert set(statuses) == {200}
    wait_until(lambda: running("rec") == 1, 30, "rec back to 1 replica when idle")
    assert_good_request_succeeds(ray_ocr)
