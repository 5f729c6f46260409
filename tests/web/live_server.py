"""Real servers on 127.0.0.1 for the web tests, and the requests they are sent."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import uvicorn

from images import b64, encode
from pdserving.launcher import terminate
from pdserving.services import local_handler
from pdserving.web.app import PREDICT_PATH

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def real_handler(kind: str, model_root: Path):
    """The fast-mode handler of ``kind``: real models, in-process."""
    return local_handler(kind, model_root)


def text_image(text: str = "HELLO 123", width: int = 360) -> np.ndarray:
    img = np.full((64, width, 3), 255, np.uint8)
    cv2.putText(img, text, (8, 46), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (0, 0, 0), 2)
    return img


def body(*images: bytes, fetch=("res",)) -> dict:
    """A prediction request for ``images`` (a readable text line when none is given)."""
    images = images or (encode(text_image()),)
    return {"feed": [{"image": b64(i)} for i in images], "fetch": list(fetch)}


def predict_url(base: str) -> str:
    return base + PREDICT_PATH


# A service as a separate process, through ``pdserving.web.runner.run``: the real fast-mode
# OCR handler when cfg has "model_root", else one that sleeps cfg["delay"] seconds per request.
_SCRIPT = """
import json, sys, time
from pathlib import Path
from pdserving.web.app import WebSettings, create_app
from pdserving.web.runner import run

cfg = json.loads(sys.argv[1])

class Sleepy:
    name, outputs = "sleepy", ("res",)
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


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptServer:
    """The service in a child process; ``start`` returns once it printed its ready line.

    Its output goes to files, never to pipes nobody reads (a full pipe would block it)."""

    def __init__(self, **cfg):
        self.cfg = {"port": unused_port(), **cfg}
        self.base = f"http://127.0.0.1:{self.cfg['port']}"
        self._out = tempfile.TemporaryFile("w+")
        self._err = tempfile.TemporaryFile("w+")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ScriptServer":
        self.proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(self.cfg)],
                                     stdout=self._out, stderr=self._err, text=True, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if "pdserving " in self.stdout:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"service did not start: {self.stdout}{self.stderr}")

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
