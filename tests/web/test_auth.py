"""API keys on the web services (docs/design.md §2.11), as users start them: every door refuses a
request without one of the keys with 401 in its own protocol's error shape, and answers any key
of the three sources (rotation); ``/health``, the page and the docs stay open, ``/ready`` and
``/metrics`` too with ``--public_metrics``; our client sends ``--api_key``; standard mode calls
its det and rec model servers with its key; no key shows in the output of any process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator

import httpx
import pytest

from pdserving.auth import CLIENT_ENV, SERVER_ENV, Auth
from pdserving.launcher import model_server
from pdserving.net import free_port
from pdserving.web.app import WebSettings, create_app
from pdserving.errors import Unavailable
from pdserving.rpc.client import RemoteModel
from tests.helpers.images import det_batch, text_image
from tests.helpers.paths import ROOT
from tests.helpers.requests import GOOD, GOOD_IMAGE, assert_error
from tests.helpers.servers import Service, script, serve, started

FLAG_1, FLAG_2 = "flag-key-7f3a9c", "flag-key-2b8e1d"  # two --api_key: a rotation
FILE_KEY, ENV_KEY = "file-key-91c4e0", "env-key-5d2077"
WRONG = "wrong-key-000000"
KEYS = (FLAG_1, FLAG_2, FILE_KEY, ENV_KEY)

# The doors of the OCR service: path, a good body, and whether an answer is good.
DOORS = {
    "/ocr/prediction": (GOOD, lambda doc: "HELLO" in "".join(doc["result"]["res"])),
    "/ocr": ({"file": GOOD_IMAGE, "fileType": 1, "visualize": False},
             lambda doc: "HELLO" in "".join(doc["result"]["ocrResults"][0]["prunedResult"]
                                            ["rec_texts"])),
    "/predict/ocr_system": ({"images": [GOOD_IMAGE]},
                            lambda doc: "HELLO" in "".join(x["text"] for x in doc["results"][0])),
}


def assert_refused_in_shape(r: httpx.Response, path: str, message: str) -> None:
    """401 with the challenge, in the error shape of ``path``'s protocol."""
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    doc = r.json()
    if path == "/ocr":  # PaddleX
        assert doc["errorCode"] == 401 and doc["errorMsg"].startswith(message), doc
        assert set(doc) == {"logId", "errorCode", "errorMsg"}
    elif path.startswith("/predict/"):  # PaddleHub
        assert doc["status"] == "101" and doc["msg"].startswith(message), doc
    else:
        assert_error(r, 401, message)


def key_files(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text(f"# the file's key\n\n{FILE_KEY}\n")
    return str(path)


@pytest.fixture(scope="module")
def keyed(model_root, tmp_path_factory) -> Iterator[Service]:
    """The fast OCR service with keys from all three sources."""
    proc = script("ocr_local_server.py", "cpu", "--model_root", str(model_root),
                  "--api_key", FLAG_1, "--api_key", FLAG_2,
                  "--api_key_file", key_files(tmp_path_factory))
    proc.extra_env = {SERVER_ENV: ENV_KEY}
    with started(proc) as service:
        yield service


@pytest.mark.parametrize("path", DOORS)
@pytest.mark.parametrize("headers, message", [
    ({}, "missing API key"), ({"Authorization": f"Bearer {WRONG}"}, "wrong API key"),
    ({"X-API-Key": WRONG}, "wrong API key")], ids=["none", "wrong-bearer", "wrong-x-api-key"])
def test_every_door_refuses_without_a_right_key(keyed, path, headers, message):
    r = httpx.post(keyed.base + path, json=DOORS[path][0], headers=headers, timeout=60)
    assert_refused_in_shape(r, path, message)


@pytest.mark.parametrize("path", DOORS)
def test_every_door_answers_each_key_in_either_header(keyed, path):
    body, good = DOORS[path]
    for i, key in enumerate(KEYS):
        header = {"Authorization": f"Bearer {key}"} if i % 2 else {"X-API-Key": key}
        r = httpx.post(keyed.base + path, json=body, headers=header, timeout=60)
        assert r.status_code == 200, r.text
        assert good(r.json())


def test_health_page_and_docs_are_open_ready_and_metrics_are_not(keyed):
    for path in ("/health", "/", "/openapi.json", "/docs"):
        assert httpx.get(keyed.base + path).status_code == 200, path
    assert '"apiKey": true' in httpx.get(keyed.base + "/").text  # the page asks for the key
    for path in ("/ready", "/metrics"):
        assert_refused_in_shape(httpx.get(keyed.base + path), path, "missing API key")
        r = httpx.get(keyed.base + path, headers={"X-API-Key": FILE_KEY})
        assert r.status_code == 200, r.text


class Ready:
    """A handler always ready, for the routes around the models."""

    name, outputs, result_type = "ocr", ("res",), dict

    def ready(self):
        return None


def test_public_metrics_opens_ready_and_metrics_only():
    app = create_app(Ready(), WebSettings(auth=Auth((FLAG_1,), public_metrics=True)))
    with serve(app) as base:
        assert httpx.get(base + "/ready").json() == {"status": "ready"}
        assert httpx.get(base + "/metrics").status_code == 200
        r = httpx.post(base + "/ocr/prediction", json=GOOD)
        assert_error(r, 401, "missing API key")


def web_client(service: Service, folder, *args: str, env: dict | None = None):
    return subprocess.run([sys.executable, str(ROOT / "ocr_web_client.py"), str(folder),
                           "--url", service.url, *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_ocr_web_client_sends_its_key(keyed, samples, tmp_path, monkeypatch):
    (tmp_path / "sign_exit.jpg").write_bytes(samples["sign_exit.jpg"][0])
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    refused = web_client(keyed, tmp_path)
    assert refused.returncode == 1 and '"err_no": 401' in refused.stdout
    ok = web_client(keyed, tmp_path, "--api_key", FLAG_2)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert samples["sign_exit.jpg"][1][0] in ok.stdout
    monkeypatch.setenv(CLIENT_ENV, ENV_KEY)  # the default of --api_key
    assert web_client(keyed, tmp_path).returncode == 0


def test_no_key_shows_in_the_output_or_the_metrics(keyed):
    """After refused and answered requests (more, if the tests above ran first)."""
    for key in (WRONG, *KEYS):
        httpx.post(keyed.url, json=GOOD, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        httpx.get(keyed.base + "/ready", headers={"X-API-Key": key})
    metrics = httpx.get(keyed.base + "/metrics", headers={"X-API-Key": FLAG_1}).text
    output = "\n".join(keyed.proc.output)
    assert "/ocr/prediction" in output  # the access log is there to look at
    for key in (*KEYS, WRONG):
        assert key not in output and key not in metrics


@pytest.fixture(scope="module")
def keyed_standard(model_root) -> Iterator[tuple[Service, object]]:
    """Standard mode with a key: an external det model server taking it (from its environment),
    and the web service (two keys by flag), whose own rec model server gets its keys."""
    det = model_server(model_root / "ocr_det_model", free_port())
    det.extra_env = {SERVER_ENV: f"{FLAG_1},{FLAG_2}"}
    with det:
        with started(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                            "--det_endpoints", det.endpoint, "--model_port", str(free_port()),
                            "--api_key", FLAG_1, "--api_key", FLAG_2)) as service:
            yield service, det


def test_standard_mode_calls_its_model_servers_with_its_key(keyed_standard, monkeypatch):
    service, det = keyed_standard
    assert_error(httpx.post(service.url, json=GOOD, timeout=60), 401, "missing API key")
    headers = {"Authorization": f"Bearer {FLAG_2}"}
    assert httpx.get(service.base + "/ready", headers=headers).json() == {"status": "ready"}
    r = httpx.post(service.url, json=GOOD, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert "HELLO" in "".join(r.json()["result"]["res"])
    # the det model server wants the key too (gRPC), and logs none
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    model = RemoteModel([det.endpoint])
    with pytest.raises(Unavailable, match="refused our API key"):
        model(det_batch(text_image()))
    model.close()
    for output in (service.proc.output, det.output):
        assert not any(k in line for line in output for k in (FLAG_1, FLAG_2)), output


def test_a_det_server_refusing_the_services_key_is_said_so(keyed_standard, model_root):
    """Not a 500 nor "unreachable": /ready and each request name the refused key."""
    _, det = keyed_standard
    with started(script("ocr_web_server.py", "cpu", "--model_root", str(model_root),
                        "--det_endpoints", det.endpoint, "--model_port", str(free_port()),
                        "--api_key", WRONG)) as service:
        headers = {"X-API-Key": WRONG}
        ready = httpx.get(service.base + "/ready", headers=headers)
        assert ready.status_code == 503
        assert "det model server" in ready.text and "refuses our API key" in ready.text
        r = httpx.post(service.url, json=GOOD, headers=headers, timeout=60)
        assert_error(r, 503, f"det model server {det.endpoint} refused our API key")
        assert WRONG not in r.text


@pytest.mark.parametrize("public_metrics", [False, True])
def test_the_openapi_document_names_the_key_where_it_is_needed(public_metrics):
    """Swagger UI's Authorize button comes from these: the two ways to send a key, wanted by
    every route but the open ones."""
    from openapi_spec_validator import validate

    app = create_app(Ready(), WebSettings(auth=Auth((FLAG_1,), public_metrics=public_metrics)))
    with serve(app) as base:
        doc = httpx.get(base + "/openapi.json").json()
    validate(doc)
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert doc["security"] == [{"bearer": []}, {"apiKey": []}]
    open_ = {"/health", "/openapi.json", "/docs", "/"} | (
        {"/ready", "/metrics"} if public_metrics else set())
    assert {p for p, ops in doc["paths"].items() if ops["get" if "get" in ops else "post"]
            .get("security") == []} == open_
    assert "401" in doc["paths"]["/ocr/prediction"]["post"]["responses"]
    assert FLAG_1 not in json.dumps(doc)
