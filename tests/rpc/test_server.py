"""The model server with the det model over gRPC: good calls, bad calls, typed replies, a
client built from the .proto alone that must get what in-process Paddle gives; its port, and
its stop."""

import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from unittest import mock

import grpc
import httpx
import numpy as np
import psutil
import pytest

from pdserving.engine.paddle_engine import PaddleEngine
from pdserving.net import PortInUse, free_port, wait_until
from pdserving.ops.resize import det_resize
from pdserving.proto import general_model_service_pb2 as pb
from pdserving.proto import general_model_service_pb2_grpc as pb_grpc
from pdserving.rpc import server as rpc_server
from pdserving.rpc.codec import from_tensor, to_tensor
from tests.helpers.images import det_batch, text_image
from tests.helpers.paths import ROOT

FETCH = "sigmoid_0.tmp_0"
ALIAS_2020 = "concat_1.tmp_0"  # its alias in the config (package.FETCH_ALIASES)


@pytest.fixture(scope="module")
def stub(det_endpoint):
    with grpc.insecure_channel(det_endpoint) as channel:
        yield pb_grpc.GeneralModelServiceStub(channel)


def request(batch, alias="image", fetch=(FETCH,), **tensor_kw) -> pb.Request:
    return pb.Request(tensor=[to_tensor(batch, alias_name=alias, **tensor_kw)],
                      fetch_var_names=list(fetch), log_id=7)


def ok(response: pb.Response, asked: str = FETCH) -> np.ndarray:
    """The first output, which must carry the name it was asked by."""
    assert response.err_no == 0, response.err_msg
    assert response.log_id == 7
    t = response.outputs[0].tensor[0]
    assert (t.name, t.alias_name) == (FETCH, asked)
    return from_tensor(t)


def test_float32_via_tensor_content(stub):
    out = ok(stub.inference(request(np.zeros((1, 3, 64, 96), np.float32))))
    assert out.shape == (1, 1, 64, 96) and out.dtype == np.float32


def test_float32_via_float_data_is_answered_in_float_data(stub):
    x = det_batch(text_image(width=64, height=32))
    t = pb.Tensor(elem_type=1, shape=x.shape, alias_name="image", float_data=x.reshape(-1))
    reply = stub.inference(pb.Request(tensor=[t], fetch_var_names=[FETCH], log_id=7))
    typed = reply.outputs[0].tensor[0]
    assert len(typed.float_data) == 64 * 32 and not typed.tensor_content
    raw = stub.inference(request(x))
    assert raw.outputs[0].tensor[0].tensor_content and not raw.outputs[0].tensor[0].float_data
    np.testing.assert_allclose(ok(reply), ok(raw), atol=1e-6)


def test_batch_of_two_and_real_feed_name(stub):
    x = np.stack([det_batch(text_image(width=64, height=64))[0]] * 2)
    out = ok(stub.inference(request(x, alias="x")))
    assert out.shape == (2, 1, 64, 64)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_empty_fetch_means_all_outputs_and_debug_answers_too(stub):
    for method in (stub.inference, stub.debug):
        out = ok(method(request(np.zeros((1, 3, 32, 32), np.float32), fetch=())),
                 asked=ALIAS_2020)
        assert out.shape == (1, 1, 32, 32)


def test_the_2020_fetch_name_is_an_alias_of_the_probability_map(stub):
    """The 2020 scripts fetch ``concat_1.tmp_0``: the config's alias of the det output. Asked by
    both names at once, the one output comes back twice, each under the name asked."""
    x = det_batch(det_resize(text_image())[0])
    reply = stub.inference(request(x, fetch=(ALIAS_2020, FETCH)))
    assert reply.err_no == 0, reply.err_msg
    by_alias, by_name = reply.outputs[0].tensor
    assert (by_alias.alias_name, by_name.alias_name) == (ALIAS_2020, FETCH)
    assert by_alias.name == by_name.name == FETCH
    np.testing.assert_array_equal(from_tensor(by_alias), from_tensor(by_name))
    assert from_tensor(by_alias).max() > 0.9  # a real probability map: the text is found


BAD_REQUESTS = {
    "empty request": (pb.Request(), "empty request"),
    "unknown feed": (request(np.zeros((1, 3, 32, 32), np.float32), alias="img"),
                     "unknown feed name 'img'"),
    "wrong dtype": (request(np.zeros((1, 3, 32, 32), np.float64)), "elem_type 3 (float64)"),
    "wrong rank": (request(np.zeros((3, 32, 32), np.float32)), "expects [batch, 3, any, any]"),
    "wrong channels": (request(np.zeros((1, 4, 32, 32), np.float32)), "shape [1, 4, 32, 32]"),
    "unknown fetch": (request(np.zeros((1, 3, 32, 32), np.float32), fetch=("nope",)),
                      "unknown fetch name ['nope']"),
    "undecodable": (pb.Request(tensor=[pb.Tensor(elem_type=1, shape=[1, 3, 32, 32],
                                                 alias_name="image", tensor_content=b"xyz")]),
                    "3 bytes of content"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_request_is_answered_then_server_still_serves(stub, name):
    bad, message = BAD_REQUESTS[name]
    response = stub.inference(bad)
    assert response.err_no == 400 and message in response.err_msg, response.err_msg
    assert not response.outputs
    ok(stub.inference(request(np.zeros((1, 3, 32, 32), np.float32))))


def test_a_second_server_on_the_port_fails_before_loading_its_model(det_endpoint, det_dir,
                                                                    monkeypatch):
    monkeypatch.setattr(rpc_server, "load_service", mock.Mock(side_effect=AssertionError))
    port = int(det_endpoint.rpartition(":")[2])
    with pytest.raises(PortInUse, match=f"127.0.0.1:{port}"):
        rpc_server.serve(det_dir, port, host="127.0.0.1", threads=1)


def test_stop_leaves_no_socket_thread_or_folder(det_dir):
    """The dispatcher, uvicorn, grpc and their unix sockets all go, even with a gRPC channel
    and an HTTP keep-alive connection still open."""
    threads_before = set(threading.enumerate())
    port = free_port()
    server = rpc_server.serve(det_dir, port, host="127.0.0.1", threads=1)
    workdir = server.front.workdir.name
    assert stat.S_IMODE(os.stat(workdir).st_mode) == 0o700
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    try:
        x = np.zeros((1, 3, 32, 32), np.float32)
        ok(pb_grpc.GeneralModelServiceStub(channel).inference(request(x)))
        assert http.post("/nowhere").status_code == 404
        server.stop(0)
        assert not os.path.exists(workdir)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        wait_until(lambda: set(threading.enumerate()) <= threads_before, 5, "threads ended")
    finally:
        channel.close()
        http.close()
    assert not [c for c in psutil.Process().net_connections("all")
                if c.laddr and (str(port) in str(c.laddr) or workdir in str(c.laddr))]


RAW_CLIENT = textwrap.dedent("""
    # Uses only code generated from the .proto into this folder: not pdserving.
    import sys
    import grpc, numpy as np
    from pdserving.proto import general_model_service_pb2 as pb
    from pdserving.proto import general_model_service_pb2_grpc as rpc
    assert pb.__file__.startswith(sys.path[0])
    assert not [m for m in sys.modules if m.startswith("pdserving.") and "proto" not in m]
    x = np.load("x.npy")
    t = pb.Tensor(elem_type=1, shape=x.shape, alias_name="image", tensor_content=x.tobytes())
    with grpc.insecure_channel(sys.argv[1]) as ch:
        r = rpc.GeneralModelServiceStub(ch).inference(pb.Request(tensor=[t]), timeout=20)
    assert r.err_no == 0, r.err_msg
    out = r.outputs[0].tensor[0]
    np.save("y.npy", np.frombuffer(out.tensor_content, np.float32).reshape(out.shape))
""")


def test_client_generated_from_proto_alone_matches_in_process_paddle(det_endpoint, det_dir,
                                                                     tmp_path):
    (tmp_path / "pdserving" / "proto").mkdir(parents=True)
    for package in ("pdserving", "pdserving/proto"):  # regular packages shadow an installed one
        (tmp_path / package / "__init__.py").touch()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", "pdserving/proto/general_model_service.proto"],
                   cwd=ROOT, check=True)
    x = det_batch(text_image(width=320, height=96))
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "raw_client.py").write_text(RAW_CLIENT)
    subprocess.run([sys.executable, "-s", "raw_client.py", det_endpoint], cwd=tmp_path,
                   check=True, timeout=60)
    remote = np.load(tmp_path / "y.npy")
    local = PaddleEngine(det_dir)(x)
    assert remote.shape == local.shape == (1, 1, 96, 320)
    assert remote.max() > 0.5  # the text was found
    np.testing.assert_allclose(remote, local, atol=2e-4)  # OpenVINO serves it (f32)
