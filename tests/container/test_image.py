"""The kit's container image (Containerfile), run with podman: ``make image-test`` builds it and
runs these. Fast mode offline (``--network=none``) answers ``ocr_web_client.py`` as
``make serve-fast`` does; the image's healthcheck, user, stop and leanness; flags passing
through; and standard mode as deploy/compose.yaml's two containers (podman-compose).
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from pdserving.net import free_port, wait_until
from tests.helpers.paths import ROOT, SAMPLES
from tests.helpers.servers import script, started

pytestmark = pytest.mark.container

IMAGE = os.environ.get("PDSERVING_IMAGE", "localhost/pdserving:latest")
RAY_IMAGE = os.environ.get("PDSERVING_RAY_IMAGE", "localhost/pdserving-ray:latest")
ENV = {**os.environ,
       "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF",
                                         str(ROOT / "deploy" / "podman" / "containers.conf"))}
FETCH = "res,dt_boxes,rec_scores"
LABELS = json.loads((SAMPLES / "labels.json").read_text(encoding="utf-8"))
START_TIMEOUT_S = 120


def podman(*args: str, timeout: float = 120, check: bool = True,
           env: dict | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                         env=env or ENV)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
    return out


def name() -> str:
    return f"pdserving-test-{uuid.uuid4().hex[:8]}"


def wait_healthy(container: str, timeout: float = START_TIMEOUT_S) -> float:
    """Seconds until the image's own HEALTHCHECK command passes (podman healthcheck run)."""
    start = time.monotonic()
    wait_until(lambda: podman("healthcheck", "run", container, check=False).returncode == 0
               or podman("inspect", container, "--format", "{{.State.Running}}").stdout.strip()
               != "true", timeout, f"{container} healthy")
    assert podman("healthcheck", "run", container, check=False).returncode == 0, \
        podman("logs", container, check=False).stderr
    return time.monotonic() - start


def client(*args: str) -> str:
    """``ocr_web_client.py`` on the samples, from the host; its output."""
    out = subprocess.run([sys.executable, str(ROOT / "ocr_web_client.py"), str(SAMPLES),
                          "--fetch", FETCH, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def built(tag: str, target: str) -> str:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (apt-get install podman runc; see .ci/run)")
    if podman("image", "exists", tag, check=False).returncode != 0:
        pytest.fail(f"no image {tag}: build it with `make {target}` (make image-test does)")
    return tag


@pytest.fixture(scope="module")
def image() -> str:
    return built(IMAGE, "image")


@pytest.fixture(scope="module")
def serve_fast_answers(tmp_path_factory) -> str:
    """What ``make serve-fast`` answers: ocr_local_server.py on the host, with the default
    family's folders written as ``make models`` writes them."""
    root = tmp_path_factory.mktemp("models")
    with started(script("ocr_local_server.py", "cpu", "--model_root", str(root))) as s:
        return client("--url", s.url)


@pytest.fixture(scope="module")
def offline(image):
    """A fast-mode container with no network at all (``--network=none``): what it answers it
    answers with nothing but the image."""
    container = name()
    podman("run", "-d", "--name", container, "--network=none", image)
    try:
        seconds = wait_healthy(container)
        print(f"\n{image}: healthy {seconds:.1f} s after `podman run`")
        yield container
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)


def test_offline_container_answers_as_serve_fast(offline, serve_fast_answers):
    out = podman("exec", offline, "python", "ocr_web_client.py", "--fetch", FETCH)
    assert out.stdout == serve_fast_answers
    assert len(out.stdout.splitlines()) == len(LABELS)


def test_runs_as_a_user_not_root(offline, image):
    assert podman("exec", offline, "id", "-u").stdout.strip() != "0"
    assert podman("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip() \
        == "pdserving"
    # PID 1 is the server itself (exec form): podman stop's SIGTERM reaches it
    assert "pdserving.entrypoint" in podman("exec", offline, "cat", "/proc/1/cmdline").stdout


def test_healthcheck_fails_while_nothing_answers(image):
    """The image's HEALTHCHECK reports a container whose server is not up as unhealthy."""
    container = name()
    podman("run", "-d", "--name", container, "--network=none", "--entrypoint", "sleep", image,
           "60")
    try:
        out = podman("healthcheck", "run", container, check=False)
        assert out.returncode != 0
        assert "unhealthy" in out.stdout + out.stderr
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)


def test_stop_ends_it_cleanly_within_5_s(image):
    container = name()
    podman("run", "-d", "--name", container, "--network=none", image)
    try:
        wait_healthy(container)
        start = time.monotonic()
        podman("stop", "-t", "10", container)
        assert time.monotonic() - start < 5
        assert podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip() \
            == "0"
        assert "Application shutdown complete" in podman("logs", container).stderr
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)


def test_flags_pass_through_on_a_published_port(image):
    """``--family`` and ``--drop_score`` reach ocr_local_server.py; the port published on the
    host's loopback answers the host's client."""
    container, port = name(), free_port()
    podman("run", "-d", "--name", container, "-p", f"127.0.0.1:{port}:9292", image, "fast",
           "--family", "PP-OCRv6_tiny", "--drop_score", "0.5")
    try:
        wait_healthy(container)
        out = client("--url", f"http://127.0.0.1:{port}/ocr/prediction")
        answers = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
                   for line in out.splitlines()}
        read = "\n".join(answers["doc_english.png"]["result"]["res"])  # tiny: a "." may go
        assert difflib.SequenceMatcher(None, read, "\n".join(LABELS["doc_english.png"])) \
            .ratio() > 0.95, read
        assert min(min(a["result"]["rec_scores"], default=1) for a in answers.values()) >= 0.5
        logs = podman("logs", container).stderr
        assert "writing PP-OCRv6_tiny" in logs
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)


def test_image_is_lean(image):
    """No test tools, build tools, caches, tests or build secret in the image."""
    check = ("import importlib.util, pathlib, shutil, sys\n"
             "bad = [m for m in ('pytest', 'playwright', 'matplotlib', 'hypothesis')"
             " if importlib.util.find_spec(m)]\n"
             "bad += [t for t in ('gcc', 'cc', 'make') if shutil.which(t)]\n"
             "bad += [str(p) for p in map(pathlib.Path, ('/app/tests', '/app/bench', '/app/.git',"
             " '/root/.cache/pip', '/app/.cache/pip', '/run/secrets/pipca', '/src'))"
             " if p.exists()]\n"
             "import cv2, openvino, paddle\n"
             "print(bad)\n")
    out = podman("run", "--rm", "--network=none", "--user", "root", "--entrypoint", "python",
                 image, "-c", check)
    assert out.stdout.strip() == "[]"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def compose(project: str, *args: str, port: int, timeout: float = 300):
    env = {**ENV, "PDSERVING_IMAGE": IMAGE, "PDSERVING_PORT": str(port)}
    return subprocess.run(["podman-compose", "-p", project, "-f",
                           str(ROOT / "deploy" / "compose.yaml"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def service_container(project: str, service: str) -> str:
    out = podman("ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                 "--filter", f"label=com.docker.compose.service={service}",
                 "--format", "{{.Names}}")
    (found,) = out.stdout.split()
    return found


def test_compose_serves_standard_mode(image, serve_fast_answers):
    """deploy/compose.yaml: the det model server and the web service in containers of their
    own; the web service's det calls go to the det container (stopped, they fail; started
    again, they work)."""
    if shutil.which("podman-compose") is None:
        pytest.fail("podman-compose is not installed (apt-get install podman-compose)")
    project, port = f"pdserving-test-{uuid.uuid4().hex[:6]}", free_port()
    up = compose(project, "up", "-d", port=port)
    assert up.returncode == 0, up.stderr
    try:
        det, web = service_container(project, "det"), service_container(project, "web")
        wait_healthy(det)
        wait_healthy(web)
        assert client("--url", f"http://127.0.0.1:{port}/ocr/prediction") == serve_fast_answers

        podman("stop", "-t", "10", det)
        image_body = {"feed": [{"image": b64(SAMPLES / "doc_english.png")}], "fetch": ["res"]}
        r = httpx.post(f"http://127.0.0.1:{port}/ocr/prediction", json=image_body, timeout=30)
        assert r.status_code == 503 and "det:9293" in r.json()["err_msg"]

        # started again, det has a new address: the web service looks its name up again
        podman("start", det)
        wait_healthy(det)
        answers = []
        wait_until(lambda: answers.append(httpx.post(
            f"http://127.0.0.1:{port}/ocr/prediction", json=image_body, timeout=60)) or
            answers[-1].status_code == 200, 10, "the web service reaching det again",
            interval=0.5)
        r = answers[-1]
        assert r.json()["result"]["res"] == LABELS["doc_english.png"]
    finally:
        down = compose(project, "down", port=port)
        assert down.returncode == 0, down.stderr



def test_ray_image_serves_the_ray_config(serve_fast_answers):
    """The Ray image on its own: `serve run deploy/ray/serve_config.yaml` on a one-node cluster
    answers as serve-fast does (same models, same steps), and stops with exit code 0."""
    image, container, port = built(RAY_IMAGE, "image-ray"), name(), free_port()
    podman("run", "-d", "--name", container, "--shm-size=1g", "-p", f"127.0.0.1:{port}:9292",
           image)
    try:
        wait_healthy(container)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
                   .status_code == 200, START_TIMEOUT_S, "the Ray application ready")
        assert client("--url", f"http://127.0.0.1:{port}/ocr/prediction") == serve_fast_answers
        assert podman("exec", container, "id", "-u").stdout.strip() != "0"
        podman("stop", "-t", "30", container, timeout=60)
        assert podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout.strip() \
            == "0"
    finally:
        podman("rm", "-f", "-t", "0", container, check=False)
