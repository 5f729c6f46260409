"""The Ray ingress run exposed, as the README says: ``make serve-ray`` with a Serve config whose
``http_options`` name a certificate (Ray's own TLS) and whose application takes an API key
file. Over HTTPS with our CA and the key it reads a sample; without the key it answers 401 in
the kit's shape, without the CA the handshake fails, and ``/health`` stays open."""

from __future__ import annotations

import httpx
import pytest
import yaml

from pdserving.net import free_port, wait_until
from pdserving.ray_app import load_config, with_deployments
from pdserving.tls import ClientTls
from tests.helpers.servers import body, ctrl_c, make_target, predict_url
from tests.helpers.tls import make_pki
from tests.ray.conftest import CONFIG
from tests.ray.test_make_serve_ray import SMALL

pytestmark = pytest.mark.ray

KEY = "ray-ingress-test-key"


def test_the_ray_ingress_takes_tls_and_api_keys(model_root, samples, tmp_path):
    pki = make_pki(tmp_path)
    keys = tmp_path / "keys"
    keys.write_text(KEY + "\n")
    port = free_port()
    config = with_deployments(load_config(CONFIG, port=port, model_root=str(model_root),
                                          api_key_file=str(keys)), det=SMALL, rec=SMALL)
    config["http_options"].update(ssl_certfile=str(pki.server_cert),
                                  ssl_keyfile=str(pki.server_key))
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    base = f"https://127.0.0.1:{port}"
    ours = ClientTls(str(pki.ca)).ssl_context()

    def up() -> bool:
        try:
            return httpx.get(base + "/health", verify=ours, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    with make_target("serve-ray", f"RAY_CONFIG={path}", log_path=tmp_path / "out.log") as make:
        try:
            wait_until(lambda: up() or make.poll() is not None, 120, "make serve-ray ready")
            assert make.poll() is None, (tmp_path / "out.log").read_text(errors="replace")[-3000:]
            data, lines = samples["menu.jpg"]
            wait_until(lambda: httpx.get(base + "/ready", verify=ours, timeout=5,
                                         headers={"X-API-Key": KEY}).status_code == 200,
                       60, "replicas ready")
            r = httpx.post(predict_url(base), json=body(data), timeout=60, verify=ours,
                           headers={"Authorization": f"Bearer {KEY}"})
            assert r.status_code == 200 and r.json()["result"]["res"] == lines
            refused = httpx.post(predict_url(base), json=body(data), timeout=60, verify=ours)
            assert refused.status_code == 401 and refused.json()["err_no"] == 401
            assert KEY not in refused.text
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(base + "/health", verify=ClientTls(str(pki.other_ca)).ssl_context())
        finally:
            alive = ctrl_c(make)
    assert not alive, [p.info for p in alive]
