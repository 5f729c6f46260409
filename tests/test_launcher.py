"""Children started by ``launcher.ServerProcess``: they start while the parent's gRPC threads are
busy (no Python runs between fork and exec), and they tie themselves to the parent that named
itself in their environment. (A killed service's children dying with it: tests/test_services.py.)
"""

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from pdserving.launcher import PACKAGE_PARENT, model_server
from pdserving.net import free_port
from pdserving.parent import PARENT_ENV
from pdserving.rpc.client import Client
from tests.helpers.images import det_batch, text_image

STARTS, AT_ONCE = 50, 5
DET_FETCH = "sigmoid_0.tmp_0"


def test_model_servers_start_50_times_beside_live_grpc(model_root, det_server):
    """The 2020 scripts' form: a det client connected and calling, then model servers started.
    Before, with the tie set between fork and exec, 1 start in 3 failed in CI."""
    client = Client(timeout=30)
    client.load_client_config(model_root / "ocr_det_client")
    client.connect([det_server.endpoint])
    image, calls, done = det_batch(text_image("LIVE", 64, 32))[0], [], threading.Event()

    def call_det() -> None:
        while not done.is_set():
            calls.append(client.predict(feed={"image": image}, fetch=[DET_FETCH]))

    def start_and_stop(_) -> int | None:
        server = model_server(model_root / "ocr_cls_model", free_port(), extra_args=["--no-http"])
        return server.start(60).stop()

    callers = [threading.Thread(target=call_det) for _ in range(2)]
    for caller in callers:
        caller.start()
    try:
        with ThreadPoolExecutor(AT_ONCE) as pool:
            codes = list(pool.map(start_and_stop, range(STARTS)))
    finally:
        done.set()
        for caller in callers:
            caller.join()
        client.close()
    assert len(codes) == STARTS and set(codes) <= {0, -signal.SIGTERM}, codes
    assert len(calls) > STARTS  # gRPC was busy all along


def child(parent: str) -> subprocess.CompletedProcess:
    """``import pdserving`` in a child whose environment names ``parent`` as its parent."""
    code = "import os, pdserving; print(os.environ.get(%r, 'removed'))" % PARENT_ENV
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT), PARENT_ENV: parent}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_child_of_the_named_parent_runs_and_its_own_children_are_not_tied():
    done = child(str(os.getpid()))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed"


def test_a_child_whose_parent_is_gone_ends_at_once():
    """Named by a parent that has ended before the child could tie itself to it."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    done = child(str(ended.pid))
    assert done.returncode == -signal.SIGTERM and done.stdout == ""


def test_no_parent_named_no_tie():
    assert child("").returncode == 0
