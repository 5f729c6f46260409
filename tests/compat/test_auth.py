"""API keys on the 2020 ``WebService`` (docs/design.md §2.11): its keys come from
``PDSERVING_API_KEYS`` (the 2020 scripts take no flags); ``run_rpc_service``'s model server takes
the same keys, and the service's client calls it with the first."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from paddle_serving_client import Client
from paddle_serving_server.web_service import WebService
from pdserving.auth import CLIENT_ENV, SERVER_ENV
from pdserving.net import free_port
from pdserving.rpc.client import RpcError
from tests.compat.test_web_service import DET_FETCH
from tests.helpers.requests import assert_error
from tests.helpers.servers import serve

OLD, NEW = "old-key-7f3a9c", "new-key-2b8e1d"
FEED = {"feed": [{"image": np.zeros((3, 32, 64), np.float32).tolist()}], "fetch": [DET_FETCH]}


def test_the_rpc_service_and_its_model_server_take_the_environments_keys(model_root,
                                                                         monkeypatch):
    monkeypatch.setenv(SERVER_ENV, f"{OLD},{NEW}")
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    svc = WebService(name="ocr")
    svc.load_model_config(model_root / "ocr_det_model")
    svc.prepare_server(workdir="workdir", port=free_port())
    svc.run_rpc_service()
    try:
        with serve(svc.app()) as base:
            url = base + "/ocr/prediction"
            assert_error(httpx.post(url, json=FEED, timeout=30), 401, "missing API key")
            for key in (OLD, NEW):
                r = httpx.post(url, json=FEED, headers={"X-API-Key": key}, timeout=30)
                assert r.status_code == 200, r.text
            r = httpx.get(base + "/ready", headers={"Authorization": f"Bearer {NEW}"})
            assert r.json() == {"status": "ready"}  # its client pings with the key
            # its model server wants a key: a 2020 client's by keyword or PDSERVING_API_KEY
            client = Client()
            client.load_client_config(model_root / "ocr_det_model")
            client.connect([svc._model_server.endpoint])
            with pytest.raises(RpcError, match="UNAUTHENTICATED"):
                client.predict(feed={"x": np.zeros((3, 32, 64), np.float32)}, fetch=[DET_FETCH])
            monkeypatch.setenv(CLIENT_ENV, NEW)
            client.connect([svc._model_server.endpoint])
            assert DET_FETCH in client.predict(feed={"x": np.zeros((3, 32, 64), np.float32)},
                                               fetch=[DET_FETCH])
            client.close()
            assert not any(k in line for line in svc._model_server.output for k in (OLD, NEW))
    finally:
        svc.close()
