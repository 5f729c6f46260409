"""``make serve`` as the README's first command runs it: the standard service on the default
family, PP-OCRv6 small, written into the checkout by ``--get_model``; Ctrl-C stops it and its
model servers."""

from __future__ import annotations

import httpx
import pytest

from pdserving.net import free_port, wait_until
from tests.helpers.servers import body, ctrl_c, make_target, predict_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ready(base: str) -> bool:
    try:
        return httpx.get(base + "/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_make_serve_serves_pp_ocrv6_small(samples, tmp_path):
    port, det_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with make_target("serve", "HOST=127.0.0.1", f"PORT={port}", f"DET_PORT={det_port}",
                     log_path=tmp_path / "out.log") as make:
        wait_until(lambda: ready(base) or make.poll() is not None, 180, "make serve ready")
        assert make.poll() is None, (tmp_path / "out.log").read_text(errors="replace")[-3000:]
        metrics = httpx.get(base + "/metrics", timeout=10).text
        for model in ("det", "rec"):
            assert (f'pdserving_model_family_info{{family="PP-OCRv6_small",model="{model}",'
                    f'model_name="PP-OCRv6_small_{model}"}} 1.0') in metrics
        for name, (data, lines) in samples.items():
            r = httpx.post(predict_url(base), json=body(data), timeout=60)
            assert r.status_code == 200 and r.json()["result"]["res"] == lines, name
        alive = ctrl_c(make)
        assert not alive, [p.info for p in alive]
