"""The OCR service on a real 2-node Ray cluster (``ray.cluster_utils.Cluster``, 1 CPU each, on
this machine), deployed from the shipped Serve config with 2 det and 2 rec replicas and the web
tests' limits, started once for the Ray tests."""

from __future__ import annotations

import httpx
import pytest
import ray
from ray import serve
from ray.cluster_utils import Cluster

from pdserving.net import free_port, wait_until
from pdserving.ray_app import APP_NAME, load_config, run_config, with_deployments
from tests.helpers.paths import ROOT
from tests.helpers.requests import SETTINGS

CONFIG = ROOT / "deploy" / "ray" / "serve_config.yaml"
# The web tests' limits (tests.helpers.requests.SETTINGS): their bad inputs get the same answers.
LIMITS = {"max_body_mib": SETTINGS.max_body_bytes / (1 << 20),
          "max_image_pixels": SETTINGS.max_image_pixels, "max_images": SETTINGS.max_images}
# Autoscaling decisions within seconds instead of Serve's 10 s metric pushes (read by every Ray
# process at start, so set before the cluster starts).
SERVE_ENV = {"RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
             "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5"}


def fixed(replicas: int) -> dict:
    """A model deployment of ``replicas`` replicas (no autoscaling), half a CPU each (4 on the
    2 CPUs)."""
    return {"num_replicas": replicas, "autoscaling_config": None, "max_ongoing_requests": 4,
            "ray_actor_options": {"num_cpus": 0.5}}


def deploy(config: dict) -> str:
    """Deploy ``config`` on the test cluster; the service's base URL once it is ready."""
    run_config(config)
    base = f"http://127.0.0.1:{config['http_options']['port']}"
    wait_until(lambda: ready(base), 60, "Ray OCR service /ready")
    return base


def ready(base: str) -> bool:
    """The service at ``base`` answers ``GET /ready`` with 200."""
    try:
        return httpx.get(base + "/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def ray_cluster():
    with pytest.MonkeyPatch.context() as env:
        for key, value in SERVE_ENV.items():
            env.setenv(key, value)
        cluster = Cluster(initialize_head=True,
                          head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            yield cluster
        finally:
            serve.shutdown()
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture(scope="session")
def ray_config(model_root) -> dict:
    """The shipped config on a free port, with 2 det and 2 rec replicas; the models of the test
    session's model root, and the web tests' limits."""
    config = load_config(CONFIG, port=free_port(), model_root=str(model_root), **LIMITS)
    return with_deployments(config, det=fixed(2), rec=fixed(2))


@pytest.fixture(scope="session")
def ray_ocr(ray_cluster, ray_config) -> str:
    """The base URL of the OCR service on the cluster."""
    return deploy(ray_config)


def model_handle(name: str):
    return serve.get_deployment_handle(name, APP_NAME)
