"""Client and RemoteModel against real model servers: the original API, load balancing, failover,
and recovery once a server is back."""

import os
import signal
import threading

import numpy as np
import psutil
import pytest

from pdserving.errors import Unavailable
from pdserving.launcher import model_server
from pdserving.net import free_port, wait_until
from pdserving.rpc import server as rpc_server
from pdserving.rpc.client import Client, RemoteModel, RpcError
from tests.helpers.images import det_batch, text_image

FETCH = "sigmoid_0.tmp_0"


@pytest.fixture(scope="module")
def servers(model_root):
    """Two det model servers (subprocesses), started one after the other."""
    procs = []
    try:
        for _ in range(2):
            procs.append(model_server(model_root / "ocr_det_model", free_port(),
                                      extra_args=["--thread", "2"]).start())
        yield procs, [p.endpoint for p in procs]
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def client(servers, model_root):
    c = Client(timeout=10)
    c.load_client_config(model_root / "ocr_det_client")
    c.connect(servers[1])
    yield c
    c.close()


def sample(h=32, w=64) -> np.ndarray:
    return det_batch(text_image(width=w, height=h))[0]


def test_one_sample_without_batch_dim(client):
    out = client.predict(feed={"image": sample()}, fetch=FETCH)
    assert list(out) == [FETCH] and out[FETCH].shape == (1, 1, 32, 64)


def test_list_of_samples_is_one_batch(client):
    out = client.predict(feed=[{"image": sample()}, {"image": sample()}], fetch=[FETCH],
                         log_id=3)
    assert out[FETCH].shape == (2, 1, 32, 64)
    np.testing.assert_allclose(out[FETCH][0], out[FETCH][1], atol=1e-6)


def test_batch_true_takes_arrays_with_batch_dim(client):
    x = np.stack([sample(), sample()])
    out = client.predict(feed={"image": x}, fetch=FETCH, batch=True)
    assert out[FETCH].shape == (2, 1, 32, 64)


NO_FEED_FETCH = "You should specify feed and fetch for prediction"
BAD_FETCH = "Fetch names should not be empty or out of saved fetch list."


@pytest.mark.parametrize("kwargs,message", [
    ({"fetch": FETCH}, NO_FEED_FETCH),
    ({"feed": {"image": 0}}, NO_FEED_FETCH),
    ({"feed": {"image": 0}, "fetch": []}, BAD_FETCH),
    ({"feed": {"image": 0}, "fetch": "res"}, BAD_FETCH),
    ({"feed": {"img": 0}, "fetch": FETCH}, "Wrong feed name: img."),
])
def test_misuse_gives_the_original_value_errors(client, kwargs, message):
    with pytest.raises(ValueError) as e:
        client.predict(**kwargs)
    assert str(e.value) == message


def test_server_side_error_is_raised_with_its_message(client):
    with pytest.raises(RpcError, match="shape") as e:
        client.predict(feed={"image": np.zeros((32, 32), np.float32)}, fetch=FETCH)
    assert e.value.err_no == 400


def test_calls_spread_over_both_servers(servers):
    procs, endpoints = servers
    model = RemoteModel(endpoints, feed_name="image", fetch_name=FETCH, name="det model server")
    busy = [psutil.Process(p.proc.pid) for p in procs]
    before = [sum(p.cpu_times()[:2]) for p in busy]
    x = np.zeros((1, 3, 320, 320), np.float32)
    for _ in range(12):
        assert model(x).shape == (1, 1, 320, 320)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(busy, before)]
    assert min(used) > 0.25 * max(used), used
    assert model.ready()
    model.close()


def test_one_server_killed_mid_run_no_call_fails(servers):
    """Calls in flight on the killed server are retried on the other one. The requests are
    det-sized (5 MB, beyond gRPC's default retry buffer) and come from 4 threads, so some are
    in flight when it dies."""
    procs, endpoints = servers
    model = RemoteModel(endpoints, feed_name="image", fetch_name=FETCH, name="det model server",
                        timeout=10)
    x = np.zeros((1, 3, 640, 640), np.float32)
    errors, done = [], []

    def calls():
        for _ in range(20):
            try:
                done.append(model(x).shape)
            except Exception as e:  # counted: there must be none
                errors.append(e)

    workers = [threading.Thread(target=calls) for _ in range(4)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(done) >= 8 or not any(w.is_alive() for w in workers), 60,
               "8 calls done", interval=0.01)
    procs[1].kill()
    at_kill = len(done)
    for worker in workers:
        worker.join(60)
    assert not errors and len(done) == 80
    assert at_kill < 70, "the server died too late to test anything"
    model.close()


def test_server_slow_to_connect_gets_the_call(model_root):
    """A live server slow to take the connection (a busy machine; here stopped for half a
    second) is waited for: the call is not failed with "connections to all backends failing"."""
    server = model_server(model_root / "ocr_det_model", free_port()).start()
    model = RemoteModel([server.endpoint], feed_name="image", fetch_name=FETCH, timeout=10)
    os.kill(server.proc.pid, signal.SIGSTOP)  # before the first call: the channel connects
    resume = threading.Timer(0.5, os.kill, (server.proc.pid, signal.SIGCONT))
    resume.start()
    try:
        assert model(sample()[None]).shape == (1, 1, 32, 64)
    finally:
        resume.join()
        model.close()
        server.stop()


def test_all_down_is_unavailable_then_recovers_by_itself(model_root):
    port = free_port()
    det = model_root / "ocr_det_model"
    server = rpc_server.serve(det, port, host="127.0.0.1", threads=1)
    model = RemoteModel([f"127.0.0.1:{port}"], feed_name="image", fetch_name=FETCH,
                        name="det model server")
    x = sample()[None]
    try:
        assert model(x).shape == (1, 1, 32, 64)
        server.stop(0)
        with pytest.raises(Unavailable, match=f"det model server 127.0.0.1:{port} unavailable"):
            model(x)
        assert not model.ready()
        server = rpc_server.serve(det, port, host="127.0.0.1", threads=1)

        def answers() -> bool:
            try:
                return model(x) is not None
            except Unavailable:
                return False

        wait_until(answers, 3, "recovery of the det model server")
        assert model.ready()
    finally:
        server.stop(0)
        model.close()
