"""Real servers on 127.0.0.1 for the tests, and the requests they are sent.

- ``script`` + ``started``: a top-level script (``ocr_web_server.py`` ...) as a user runs it,
  running while the ``with`` lasts, as a ``Service`` to post images to.
- ``serve``: an app under uvicorn in a thread of the test process (fake or in-process handlers).
- ``ScriptServer``: a web service in a child process through ``pdserving.web.runner.run`` (its
  signals, exit codes and output).

Every port is one the kernel picks (``pdserving.net.free_port()``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Iterator

import httpx
import psutil
import uvicorn

from pdserving.launcher import ServerProcess, terminate
from pdserving.net import bind, free_port, wait_until
from pdserving.web.app import PREDICT_PATH
from pdserving.web.runner import config
from tests.helpers.images import encode, text_image
from tests.helpers.paths import ROOT


def body(*images: bytes, fetch=("res",)) -> dict:
    """A prediction request for ``images`` (a readable text line when none is given)."""
    images = images or (encode(text_image()),)
    return {"feed": [{"image": base64.b64encode(i).decode()} for i in images],
            "fetch": list(fetch)}


def predict_url(base: str) -> str:
    return base + PREDICT_PATH


def script(name: str, *args: str, port: int | None = None) -> ServerProcess:
    """A top-level script (``ocr_web_server.py`` ...) as a user runs it, on a 127.0.0.1 port
    (one the kernel picks unless given); not started yet."""
    port = free_port() if port is None else port
    argv = [sys.executable, str(ROOT / name), *args, "--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess(argv, name, f"127.0.0.1:{port}")


class Service:
    """A running web service: its process and its URL."""

    def __init__(self, proc: ServerProcess):
        self.proc = proc
        self.base = f"http://{proc.endpoint}"
        self.url = predict_url(self.base)

    def post(self, images: list[bytes], fetch=("res",), timeout: float = 60) -> httpx.Response:
        return httpx.post(self.url, json=body(*images, fetch=fetch), timeout=timeout)


@contextlib.contextmanager
def started(proc: ServerProcess, timeout: float = 120) -> Iterator[Service]:
    """``proc`` started (ready line seen) as a ``Service``; stopped when the ``with`` ends."""
    proc.start(timeout=timeout)
    try:
        yield Service(proc)
    finally:
        proc.stop()


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free port; yields the base URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 10, "test server start")
    if not server.started:
        raise RuntimeError("test server did not start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


# A service as a separate process, through ``pdserving.web.runner.run``: the real fast-mode
# OCR handler when cfg has "model_root", else one that sleeps cfg["delay"] seconds per request.
_SCRIPT = """
import json, sys, time
from pathlib import Path
from pdserving.web.app import WebSettings, create_app
from pdserving.web.runner import run

cfg = json.loads(sys.argv[1])

class Sleepy:
    name, outputs, result_type = "sleepy", ("res",), dict
    def __call__(self, images, fetch):
        time.sleep(cfg.get("delay", 0))
        return {"res": [f"{img.shape[1]}x{img.shape[0]}" for img in images]}
    def ready(self):
        return None

if cfg.get("model_root"):
    from pdserving.services import local_handler
    handler = local_handler("ocr", cfg["model_root"])
else:
    handler = Sleepy()
marker = cfg.get("marker")
stop = [lambda: Path(marker).write_text("stopped")] if marker else []
app = create_app(handler, WebSettings(**cfg.get("settings", {})), on_shutdown=stop)
sys.exit(run(app, "127.0.0.1", cfg["port"], graceful_timeout=cfg.get("graceful", 10)))
"""


class ScriptServer:
    """The service in a child process; ``start`` returns once it printed its ready line.

    Its output goes to files, never to pipes nobody reads (a full pipe would block it)."""

    def __init__(self, **cfg):
        self.cfg = {"port": free_port(), **cfg}
        self.base = f"http://127.0.0.1:{self.cfg['port']}"
        self._out = tempfile.TemporaryFile("w+")
        self._err = tempfile.TemporaryFile("w+")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ScriptServer":
        self.proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(self.cfg)],
                                     stdout=self._out, stderr=self._err, text=True, cwd=ROOT)
        try:
            wait_until(lambda: self.ready or self.proc.poll() is not None, timeout,
                       "service ready line")
        except TimeoutError:
            pass
        if not self.ready:
            self.stop()
            raise RuntimeError(f"service did not start: {self.stdout}{self.stderr}")
        return self

    @property
    def ready(self) -> bool:
        return "pdserving " in self.stdout

    @property
    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read()

    @property
    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()

    def stop(self, timeout: float = 15) -> int:
        return terminate(self.proc, timeout)

    def __enter__(self) -> "ScriptServer":
        return self.start()

    def close(self) -> None:
        if self.proc is not None:
            self.stop()
        self._out.close()
        self._err.close()

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def make_target(target: str, *variables: str, log_path) -> Iterator[subprocess.Popen]:
    """``make -s target VARIABLES...`` from the checkout in a process group of its own, as a
    user runs it in a terminal; killed at the end if still running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "FAMILY"}
    with open(log_path, "wb") as log:
        make = subprocess.Popen(["make", "-s", target, *variables], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield make
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)


def ctrl_c(make: subprocess.Popen) -> list:
    """Ctrl-C in ``make``'s terminal (SIGINT to its group); the processes it had started that
    are still alive 30 s after it exited."""
    started = psutil.Process(make.pid).children(recursive=True)
    os.killpg(make.pid, signal.SIGINT)
    make.wait(60)
    _, alive = psutil.wait_procs(started, timeout=30)
    return alive
