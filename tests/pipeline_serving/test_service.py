"""PaddleOCR's pipeline service as its users run it: ``web_service.py --config=config.yml``,
spoken to over HTTP and gRPC by clients written from the published protocol (docs/design.md §6),
and by the two client scripts."""

import ast
import base64
import json
import socket
import subprocess
import sys

import grpc
import httpx
import pytest
import yaml

from pdserving.launcher import ServerProcess
from pdserving.net import free_port
from pdserving.proto import pipeline_service_pb2 as pb
from tests.helpers.images import b64, encode, text_line
from tests.helpers.paths import ROOT, SAMPLES

pytestmark = pytest.mark.e2e

INFERENCE = "/baidu.paddle_serving.pipeline_serving.PipelineService/inference"


class Pipeline:
    """A running pipeline service: its HTTP URL and its gRPC call."""

    def __init__(self, proc: ServerProcess, http_port: int, rpc_port: int):
        self.proc = proc
        self.base = f"http://127.0.0.1:{http_port}"
        self.url = f"{self.base}/ocr/prediction"
        self.rpc_endpoint = f"127.0.0.1:{rpc_port}"
        self.channel = grpc.insecure_channel(self.rpc_endpoint)
        self.call = self.channel.unary_unary(INFERENCE, pb.Request.SerializeToString,
                                             pb.Response.FromString)

    def post(self, doc: dict | bytes, path: str = "/ocr/prediction") -> httpx.Response:
        """The body as PaddleOCR's client sends it: a JSON string, no Content-Type."""
        content = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return httpx.post(self.base + path, content=content, timeout=120)

    def grpc(self, **fields) -> pb.Response:
        return self.call(pb.Request(**fields), timeout=120)


def write_config(folder, model_root, http_port: int, rpc_port: int) -> None:
    """A copy of the shipped config.yml in ``folder``, on these ports, with the session's model
    folders."""
    doc = yaml.safe_load((ROOT / "config.yml").read_text())
    doc.update(http_port=http_port, rpc_port=rpc_port)
    for name, op in doc["op"].items():
        op["local_service_conf"]["model_config"] = str(model_root / f"ocr_{name}_model")
    (folder / "config.yml").write_text(yaml.safe_dump(doc))


def start(script: str, model_root, tmp_path_factory, *args: str) -> Pipeline:
    """``script --config=config.yml *args`` on free ports (see ``write_config``)."""
    folder = tmp_path_factory.mktemp(script.removesuffix(".py"))
    http_port, rpc_port = free_port(), free_port()
    write_config(folder, model_root, http_port, rpc_port)
    proc = ServerProcess([sys.executable, str(ROOT / script), "--config=config.yml",
                          "--host", "127.0.0.1", *args], script, cwd=folder)
    proc.start(timeout=120)
    return Pipeline(proc, http_port, rpc_port)


@pytest.fixture(scope="module")
def pipeline(model_root, tmp_path_factory):
    service = start("web_service.py", model_root, tmp_path_factory)
    yield service
    service.channel.close()
    service.proc.stop()


def image_request(data: bytes) -> dict:
    return {"key": ["image"], "value": [base64.b64encode(data).decode()]}


def lines(reply_value: str) -> list:
    """``value[0]`` read as PaddleOCR's client reads it (``eval``, here the literal-only one)."""
    return ast.literal_eval(reply_value)


def test_ready_line_names_both_ports(pipeline):
    assert pipeline.proc.ready_line.endswith(
        f"/ocr/prediction, gRPC PipelineService on {pipeline.rpc_endpoint}")


def test_http_reply_evals_to_paddleocr_lines_with_the_fast_services_texts(
        pipeline, fast_ocr, samples):
    for name, (data, _) in samples.items():
        r = pipeline.post(image_request(data))
        assert r.status_code == 200
        reply = r.json()
        assert reply["err_no"] == 0 and reply["err_msg"] == "" and reply["key"] == ["result"]
        assert reply["tensors"] == []
        # what eval() gives PaddleOCR's client: [((text, score), box), ...], plain numbers
        got = eval(reply["value"][0])  # noqa: S307 - the client's own way of reading it
        assert got == lines(reply["value"][0])
        fast = fast_ocr.post([data], fetch=("res", "dt_boxes")).json()["result"]
        assert [text for (text, _), _ in got] == fast["res"], name
        assert [box for _, box in got] == fast["dt_boxes"], name
        for (text, score), box in got:
            assert type(score) is float and 0.5 <= score <= 1
            assert len(box) == 4 and all(type(v) is int for pt in box for v in pt)


def test_the_body_needs_no_content_type(pipeline, samples):
    data, expected = samples["sign_shop.jpg"]
    request = httpx.Request("POST", pipeline.url, content=json.dumps(image_request(data)))
    assert "content-type" not in request.headers
    with httpx.Client(timeout=120) as client:
        reply = client.send(request).json()
    assert [text for (text, _), _ in lines(reply["value"][0])] == expected


def test_grpc_gives_the_same_reply_as_http(pipeline, samples):
    data, _ = samples["menu.jpg"]
    over_http = pipeline.post(image_request(data)).json()
    reply = pipeline.grpc(key=["image"], value=[base64.b64encode(data).decode()],
                          name="ocr", logid=7)
    assert (reply.err_no, reply.err_msg) == (0, "")
    assert list(reply.key) == ["result"] and list(reply.value) == over_http["value"]
    assert pipeline.grpc(**image_request(data)).value == reply.value  # no name is accepted


ERRORS = {  # (HTTP path, body) -> err_no, words of err_msg; answered 200, key/value empty
    "bad base64": ("/ocr/prediction", {"key": ["image"], "value": ["not base64!"]}, 10000,
                   "failed to preprocess: image:"),
    "not an image": ("/ocr/prediction", image_request(b"plain text"), 10000,
                     "not an image"),
    "wrong service name": ("/det/prediction", image_request(b"x"), 3002,
                           "Failed to inference: Service name error."),
    "keys and values differ": ("/ocr/prediction", {"key": ["image", "x"], "value": ["a"]},
                               8000, "2 keys and 1 values"),
    "no image key": ("/ocr/prediction", {"key": ["picture"], "value": ["a"]}, 5000,
                     'no "image" key'),
}


@pytest.mark.parametrize("case", ERRORS)
def test_pipeline_errors_are_200_with_err_no_and_the_service_goes_on(pipeline, samples, case):
    path, doc, err_no, words = ERRORS[case]
    r = pipeline.post(doc, path)
    assert r.status_code == 200
    reply = r.json()
    assert reply["err_no"] == err_no and words in reply["err_msg"]
    assert reply["key"] == [] and reply["value"] == []
    # the same over gRPC (the service name travels in the message there)
    name = path.split("/")[1]
    over_grpc = pipeline.grpc(key=doc["key"], value=doc["value"], name=name)
    assert over_grpc.err_no == err_no and not over_grpc.value
    assert_good_request_succeeds(pipeline, samples)


def assert_good_request_succeeds(pipeline, samples):
    data, expected = samples["sign_street.jpg"]
    reply = pipeline.post(image_request(data)).json()
    assert [text for (text, _), _ in lines(reply["value"][0])] == expected


REFUSED = {  # what never reaches the pipeline: an HTTP error status, the reply's shape
    "malformed JSON": ("/ocr/prediction", b'{"key": ["image"', 400, "not a pipeline request"),
    "wrong JSON type": ("/ocr/prediction", b'{"key": "image", "value": 3}', 400,
                        "not a pipeline request"),
    "unknown path": ("/ocr/prediction/more", b"{}", 404, "Not Found"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_requests_that_are_not_pipeline_requests_get_an_http_error(pipeline, samples, case):
    path, body, status, words = REFUSED[case]
    r = pipeline.post(body, path)
    assert r.status_code == status
    reply = r.json()
    assert reply["err_no"] == status and words in reply["err_msg"]
    assert reply["key"] == [] and reply["value"] == []
    assert_good_request_succeeds(pipeline, samples)


def test_health_ready_metrics(pipeline):
    assert httpx.get(pipeline.base + "/health").json() == {"status": "alive"}
    assert httpx.get(pipeline.base + "/ready").json() == {"status": "ready"}
    text = httpx.get(pipeline.base + "/metrics").text
    assert 'pdserving_http_requests_total{route="/{name}/{method}",service="ocr",status="200"}' \
        in text
    assert 'pdserving_rpc_requests_total{err_no="0",service="ocr"}' in text
    assert 'pdserving_model_inference_seconds_count{model="det"}' in text


def run_client(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), "--image_dir", str(SAMPLES),
                           *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("script,flag", [("pipeline_http_client.py", "--url"),
                                         ("pipeline_rpc_client.py", "--endpoint")])
def test_client_scripts_print_every_samples_lines(pipeline, samples, script, flag):
    where = pipeline.url if flag == "--url" else pipeline.rpc_endpoint
    run = run_client(script, flag, where)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for name, (_, expected) in samples.items():
        block = out.split(f"**********{name}**********")[1].split("**********")[0]
        assert block.startswith("\nerr_no:0, err_msg:\n"), block
        printed = [line.rsplit("), [[", 1)[0].removeprefix("(") for line in
                   block.strip().splitlines()[1:]]
        assert [ast.literal_eval(f"({p})")[0] for p in printed] == expected, name


def test_paddleocrs_own_rpc_client_code_runs_unchanged(pipeline, samples):
    """PaddleOCR's pipeline_rpc_client.py imports PipelineClient from Paddle Serving."""
    code = f"""
try:
    from paddle_serving_server_gpu.pipeline import PipelineClient
except ImportError:
    from paddle_serving_server.pipeline import PipelineClient
import base64
client = PipelineClient()
client.connect(["{pipeline.rpc_endpoint}"])
image = base64.b64encode(open({str(SAMPLES / 'sign_exit.jpg')!r}, "rb").read()).decode("utf8")
ret = client.predict(feed_dict={{"image": image}}, fetch=["res"])
print(ret.err_no, eval(ret.value[0])[0][0][0])
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", samples["sign_exit.jpg"][1][0]]


def test_http_client_fails_on_an_error_reply(pipeline, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    run = subprocess.run([sys.executable, str(ROOT / "pipeline_http_client.py"),
                          "--image_dir", str(tmp_path), "--url", pipeline.url],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 1 and "err_no:10000" in run.stdout


def test_taken_rpc_port_is_one_line(model_root, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        write_config(tmp_path, model_root, free_port(), taken.getsockname()[1])
        run = subprocess.run([sys.executable, str(ROOT / "web_service.py"), "--config",
                              "config.yml", "--host", "127.0.0.1"], capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: cannot listen on 127.0.0.1:")


def test_det_and_rec_only_services(model_root, tmp_path_factory, fast_ocr, samples):
    data, _ = samples["doc_english.png"]
    det = start("web_service_det.py", model_root, tmp_path_factory)
    try:
        reply = det.post(image_request(data)).json()
        assert reply["key"] == ["dt_boxes"]
        boxes = fast_ocr.post([data], fetch=("dt_boxes",)).json()["result"]["dt_boxes"]
        assert lines(reply["value"][0]) == boxes
    finally:
        det.channel.close()
        det.proc.stop()
    rec = start("web_service_rec.py", model_root, tmp_path_factory)
    try:
        reply = rec.post({"key": ["image"], "value": [b64(encode(text_line("Hello 2026")))]})
        assert reply.json()["key"] == ["res"] and lines(reply.json()["value"][0]) == ["Hello 2026"]
        over_grpc = rec.grpc(key=["image"], value=["%%%"])
        assert over_grpc.err_no == 10000 and not over_grpc.value
    finally:
        rec.channel.close()
        rec.proc.stop()
