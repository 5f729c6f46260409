"""``make serve-ray`` as a user runs it: a local Ray cluster of its own with the service from a
Serve config, answering the kit's protocol; Ctrl-C (SIGINT to its process group) stops the
service and the cluster, leaving no process behind."""

from __future__ import annotations

import httpx
import psutil
import pytest
import yaml

from pdserving.net import free_port, wait_until
from pdserving.ray_app import load_config, with_deployments
from tests.helpers.servers import body, ctrl_c, make_target, predict_url
from tests.ray.conftest import CONFIG, ready

pytestmark = pytest.mark.ray

SMALL = {"num_replicas": 1, "autoscaling_config": None, "ray_actor_options": {"num_cpus": 0.5}}


def test_make_serve_ray_serves_and_ctrl_c_stops_everything(model_root, samples, tmp_path):
    port = free_port()
    config = with_deployments(load_config(CONFIG, port=port, model_root=str(model_root)),
                              det=SMALL, rec=SMALL)
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    base = f"http://127.0.0.1:{port}"
    with make_target("serve-ray", f"RAY_CONFIG={path}", log_path=tmp_path / "out.log") as make:
        wait_until(lambda: ready(base) or make.poll() is not None, 120, "make serve-ray ready")
        assert make.poll() is None, (tmp_path / "out.log").read_text(errors="replace")[-3000:]
        data, lines = samples["menu.jpg"]
        r = httpx.post(predict_url(base), json=body(data), timeout=60)
        assert r.status_code == 200 and r.json()["result"]["res"] == lines
        started = psutil.Process(make.pid).children(recursive=True)
        assert any("raylet" in p.name() for p in started), [p.name() for p in started]
        alive = ctrl_c(make)
        assert not alive, [p.info for p in alive]
