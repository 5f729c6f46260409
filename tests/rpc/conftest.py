"""The det model server the tests of ``pdserving.rpc`` share: in this process, so a test can see
its threads and sockets, with a small body limit so "too large" costs little to send."""

import pytest

from pdserving.net import free_port
from pdserving.rpc import server as rpc_server

MAX_BODY_SIZE = 4 << 20  # a 1x3x512x512 float32 input (3 MB) still fits


@pytest.fixture(scope="session")
def det_dir(model_root):
    return model_root / "ocr_det_model"


@pytest.fixture(scope="session")
def det_endpoint(det_dir):
    """``host:port`` of the shared det model server (gRPC and HTTP on the one port)."""
    port = free_port()
    server = rpc_server.serve(det_dir, port, host="127.0.0.1", threads=2,
                              max_body_size=MAX_BODY_SIZE)
    yield f"127.0.0.1:{port}"
    server.stop(0)
