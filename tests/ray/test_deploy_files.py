"""The shipped deployment files, read without a Ray cluster: the Serve config
(deploy/ray/serve_config.yaml) against Serve's own schema and ``pdserving.ray_app``, and the
KubeRay manifest (deploy/k8s/rayservice.yaml) against the Serve config, so the two cannot drift."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import ValidationError
from ray.serve._private.build_app import build_app as serve_build_app
from ray.serve.schema import ServeDeploySchema

from pdserving.ray_app import APP_NAME, AppArgs, build_app, with_deployments
from pdserving.services import model_names
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.ray

SERVE_CONFIG = ROOT / "deploy" / "ray" / "serve_config.yaml"
RAYSERVICE = ROOT / "deploy" / "k8s" / "rayservice.yaml"
PORT = 9292


def read_yaml(path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def serve_config() -> dict:
    return read_yaml(SERVE_CONFIG)


@pytest.fixture(scope="module")
def rayservice() -> dict:
    return read_yaml(RAYSERVICE)


def deployment_names(args: dict) -> list[str]:
    """The deployments ``build_app(args)`` makes, as Serve builds them for a deploy (no cluster
    needed), ingress last."""
    built = serve_build_app(build_app(args), name=APP_NAME)
    assert built.ingress_deployment_name == "ingress"
    return [deployment.name for deployment in built.deployments]


def ray_pin() -> str:
    text = (ROOT / "requirements-ray.txt").read_text(encoding="utf-8")
    return re.search(r"^ray\[serve\]==(\S+)$", text, re.MULTILINE).group(1)


# --- deploy/ray/serve_config.yaml


def test_serve_config_is_a_valid_serve_config_on_9292(serve_config):
    schema = ServeDeploySchema.model_validate(serve_config)
    assert schema.http_options.port == PORT
    assert [app.name for app in schema.applications] == [APP_NAME]
    assert schema.applications[0].import_path == "pdserving.ray_app:build_app"


def test_serve_config_args_are_app_args(serve_config):
    (app,) = serve_config["applications"]
    args = AppArgs.model_validate(app["args"])
    assert model_names(args.kind, args.use_cls) == ["det", "rec"]


def test_serve_config_deployments_are_those_build_app_makes(serve_config):
    (app,) = serve_config["applications"]
    assert [d["name"] for d in app["deployments"]] == deployment_names(app["args"])
    assert deployment_names(app["args"]) == ["det", "rec", "ingress"]


def test_with_deployments_replaces_and_removes_fields_without_touching_the_input():
    config = {"applications": [{"deployments": [
        {"name": "det", "autoscaling_config": {"min_replicas": 1}, "max_ongoing_requests": 4},
        {"name": "ingress", "num_replicas": 1}]}]}
    out = with_deployments(config, det={"autoscaling_config": None, "num_replicas": 1})
    assert out["applications"][0]["deployments"] == [
        {"name": "det", "max_ongoing_requests": 4, "num_replicas": 1},
        {"name": "ingress", "num_replicas": 1}]
    assert "autoscaling_config" in config["applications"][0]["deployments"][0]


def test_use_cls_adds_a_cls_deployment():
    assert sorted(deployment_names({"use_cls": True})) == ["cls", "det", "ingress", "rec"]


@pytest.mark.parametrize("bad, key", [({"kind": "nope"}, "kind"),
                                      ({"colour": "red"}, "colour"),
                                      ({"threads": 0}, "threads"),
                                      ({"family": "PP-OCRv9"}, "family")])
def test_build_app_refuses_a_bad_argument_by_name(bad, key):
    with pytest.raises(ValidationError) as error:
        build_app(bad)
    assert [e["loc"] for e in error.value.errors()] == [(key,)]
    assert key in str(error.value)


def test_the_post_ocr_arguments_reach_the_web_settings():
    settings = AppArgs(max_pdf_pages=7, visualize=False,
                       allow_url_hosts=["files.example"]).settings()
    assert (settings.max_pdf_pages, settings.visualize, settings.url_hosts) == (
        7, False, ("files.example",))


def test_the_ingress_keys_are_its_key_file_and_environment(tmp_path, monkeypatch):
    """The Serve config names a file of keys (or the ingress's PDSERVING_API_KEYS), never the
    keys themselves (docs/design.md §2.11)."""
    (tmp_path / "keys").write_text("# ingress\nfile-key-1\n")
    monkeypatch.setenv("PDSERVING_API_KEYS", "env-key-2")
    auth = AppArgs(api_key_file=str(tmp_path / "keys"), public_metrics=True).settings().auth
    assert auth.keys == ("file-key-1", "env-key-2") and auth.public_metrics
    monkeypatch.delenv("PDSERVING_API_KEYS")
    assert not AppArgs().settings().auth.on


def test_the_family_argument_writes_that_familys_folders(tmp_path):
    args = AppArgs(family="PP-OCRv6_tiny", model_root=str(tmp_path))
    rec = args.folder("rec")
    assert rec.settings.family == "PP-OCRv6_tiny" and rec.is_onnx
    assert rec.best_path_classes == 6906


# --- deploy/k8s/rayservice.yaml


def test_rayservice_is_a_kuberay_rayservice(rayservice):
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice["kind"] == "RayService"
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert cluster["workerGroupSpecs"]


def test_rayservice_serve_config_is_the_serve_config(rayservice, serve_config):
    text = rayservice["spec"]["serveConfigV2"]
    assert isinstance(text, str)  # KubeRay takes the Serve config as a YAML string
    config = yaml.safe_load(text)
    ServeDeploySchema.model_validate(config)
    assert config["applications"] == serve_config["applications"]
    assert config["http_options"] == serve_config["http_options"]
    assert config["proxy_location"] == serve_config["proxy_location"]


def containers(rayservice) -> list[dict]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def test_rayservice_containers_expose_the_serve_port(rayservice):
    # KubeRay's <name>-serve-svc targets the container port named "serve"
    for container in containers(rayservice):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports.get("serve") == PORT, container["name"]


def test_rayservice_runs_the_kits_ray_image(rayservice):
    """Every pod runs the image `make image-ray` builds (the Containerfile's ray target, which
    installs requirements-ray.txt: the Ray of rayVersion)."""
    assert rayservice["spec"]["rayClusterConfig"]["rayVersion"] == ray_pin()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    tag = re.search(r"^RAY_IMAGE\s*\?=\s*(\S+)", makefile, re.M).group(1)
    for container in containers(rayservice):
        assert container["image"] == tag, container["name"]
    assert "FROM base AS ray" in (ROOT / "Containerfile").read_text(encoding="utf-8")
