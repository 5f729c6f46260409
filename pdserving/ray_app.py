"""The OCR service on Ray Serve: det, rec and cls scaled on their own, across machines.

Each model is a deployment whose replicas hold one engine and the pipeline step around it
(``ModelReplica``: a ``DetStep`` or ``RecStep``). The ingress deployment serves the kit's HTTP
protocol with the same web app, handler and pipeline as the fast service (``create_app``,
``KINDS``); its pipeline's steps are calls to a replica (``ServeCall``). Serve places, restarts
and autoscales the replicas.

``serve run deploy/ray/serve_config.yaml`` (``make serve-ray``) or ``serve deploy`` on a cluster
reads ``build_app`` with the config's ``args`` (``AppArgs``).
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path
from typing import Literal

import ray
import yaml
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from pdserving import auth, metrics
from pdserving.engine import engine_options
from pdserving.engine.load import load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.errors import Unavailable
from pdserving.families import FAMILIES
from pdserving.package import ensure_model, pipeline_folders
from pdserving.pipeline import OcrOptions, OcrPipeline
from pdserving.services import (KINDS, build_steps, model_names, pipeline_options,
                                pipeline_warmup)
from pdserving.web.app import WebSettings, create_app

log = logging.getLogger(__name__)

APP_NAME = "ocr"
# Where a node writes the bundled model folders when ``model_root`` is not given: every node
# makes its own, from the installed package, once.
DEFAULT_MODEL_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                          "pdserving", "models")
# A call that met a dead or restarting replica is sent again (inference has no side effects):
# the router learns of the death a moment later and picks a live replica.
ATTEMPTS = 3


class AppArgs(BaseModel):
    """The application arguments (``args:`` in the Serve config)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ocr", "det", "rec"] = "ocr"
    engine: Literal["openvino", "paddle"] | None = Field(
        None, description="default: OpenVINO where installed, else Paddle")
    threads: int | None = Field(
        None, ge=1, description="math threads of each model replica; default: the replica's "
                                "num_cpus, rounded up")
    precision: Literal["fp32", "bf16"] = "fp32"
    use_cls: bool = False
    drop_score: float = 0.0
    family: Literal[tuple(FAMILIES)] | None = Field(  # type: ignore[valid-type]
        None, description="model family of the folders written when missing; default: "
                          "PP-OCRv6_small with OpenVINO, PP-OCRv4_mobile on Paddle")
    model_root: str | None = Field(
        None, description="folder with ocr_det_model/, ocr_rec_model/ on every node; default: "
                          "written from the bundled models into ~/.cache/pdserving/models")
    max_in_flight: int = Field(4, ge=1, description="requests the ingress processes at once")
    max_queue: int = Field(16, ge=0)
    max_body_mib: float = Field(WebSettings.max_body_bytes / (1 << 20), gt=0)
    max_images: int = Field(WebSettings.max_images, ge=1, description="per request")
    max_image_pixels: int = Field(WebSettings.max_image_pixels, ge=1)
    timeout: float = Field(WebSettings.request_timeout, gt=0, description="seconds per request")
    max_pdf_pages: int = Field(WebSettings.max_pdf_pages, ge=1, description="POST /ocr")
    visualize: bool = Field(WebSettings.visualize, description="POST /ocr: pictures by default")
    allow_url_hosts: list[str] = Field([], description="POST /ocr: hosts a file URL may name")
    # API keys (docs/design.md §2.11): a file on the ingress's node and the ingress's
    # PDSERVING_API_KEYS (runtime_env), never the keys themselves in the config.
    api_key_file: str | None = Field(None, description="file of API keys, one a line")
    public_metrics: bool = Field(False, description="/ready and /metrics open without a key")

    def ocr_options(self) -> OcrOptions:
        return OcrOptions(use_cls=self.use_cls, drop_score=self.drop_score)

    def settings(self) -> WebSettings:
        return WebSettings(max_body_bytes=int(self.max_body_mib * (1 << 20)),
                           max_image_pixels=self.max_image_pixels, max_images=self.max_images,
                           max_in_flight=self.max_in_flight, max_queue=self.max_queue,
                           request_timeout=self.timeout, max_pdf_pages=self.max_pdf_pages,
                           visualize=self.visualize, url_hosts=tuple(self.allow_url_hosts),
                           auth=auth.load(key_file=self.api_key_file,
                                          public_metrics=self.public_metrics))

    def folder(self, name: str) -> ModelFolder:
        """Model ``name``'s folder on this node, written from the bundled models if missing (one
        process at a time: replicas on one node start together)."""
        root = Path(self.model_root) if self.model_root else DEFAULT_MODEL_ROOT
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(root / ".pdserving.lock"):
            return ModelFolder.read(ensure_model(pipeline_folders(name, root)[0], self.family,
                                                 self.engine))


@serve.deployment(max_ongoing_requests=4)
class ModelReplica:
    """One model on one engine, with the pipeline step that runs next to it, so that 8-bit
    images cross the network instead of float tensors:

    - det: a det-resized image in, its boxes out (``DetStep``: normalise, the model, DB
      post-process);
    - rec: crops in, (text, score) per crop out (``RecStep``; with ``use_cls`` its classifier
      is the cls deployment);
    - cls: a batch in, the model's output out.

    Its math threads are the replica's CPUs (``ray_actor_options.num_cpus``) unless ``threads``
    says otherwise. The engine is warmed up at the pipeline's shapes before the replica serves.
    """

    def __init__(self, name: str, args: AppArgs, cls: DeploymentHandle | None = None):
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        options = engine_options(args.engine, instances=1, precision=args.precision,
                                 threads=args.threads or max(1, math.ceil(cpus)))
        folder = args.folder(name)
        ocr_options = args.ocr_options()
        self._loaded = load_models({name: folder}, options,
                                   {name: pipeline_warmup(name, folder, ocr_options)})
        model = self._loaded.models[name]
        self.engine = model.engine
        if name == "cls":
            self._step = model
        else:
            models = {name: model}
            if cls:
                models["cls"] = ServeCall(cls, "cls", args.timeout)
            self._step = getattr(build_steps(models, {name: folder}, ocr_options), name)

    def __call__(self, *inputs):
        return self._step(*inputs)

    def where(self) -> dict:
        """Which replica this is (its id and Ray actor name), where it runs (node id,
        process), and its engine."""
        context = ray.get_runtime_context()
        return {"replica": serve.get_replica_context().replica_id.unique_id,
                "actor": context.get_actor_name(), "node_id": context.get_node_id(),
                "pid": os.getpid(), "engine": self.engine}

    def __del__(self):  # Serve calls it when it stops the replica
        if hasattr(self, "_loaded"):
            self._loaded.close()


class ServeCall:
    """A blocking call to one of a deployment's replicas (the web app's worker threads make
    it). A replica that died or is restarting is skipped for another; a full deployment, a
    timeout or no replica left is ``Unavailable`` (503 with Retry-After), never a 500."""

    def __init__(self, handle: DeploymentHandle, name: str, timeout: float):
        # The handle's router is set up here, once: a handle sets it up on first use without a
        # lock, and worker threads using it first at the same time would each set up their own,
        # each with its own queue (max_queued_requests would then hold per thread).
        self.handle = handle.options()
        self.name = name
        self.timeout = timeout

    def __call__(self, *inputs):
        for attempt in range(ATTEMPTS):
            try:
                return self.handle.remote(*inputs).result(timeout_s=self.timeout)
            except (RayActorError, ActorUnavailableError) as e:  # died, or restarting
                log.warning("%s replica failed (%s); attempt %d of %d", self.name,
                            type(e).__name__, attempt + 1, ATTEMPTS)
                reason = f"{self.name} replicas unavailable: {type(e).__name__}"
            except BackPressureError:
                reason = f"{self.name} replicas busy, retry later"
                break
            except TimeoutError:
                reason = f"{self.name} call timed out after {self.timeout:g} s"
                break
        raise Unavailable(reason)


@serve.deployment(max_ongoing_requests=64)
@serve.ingress()
class OcrIngress:
    """The HTTP side: the kit's web app (``/ocr/prediction``, ``/health``, ``/ready``,
    ``/metrics``) with its limits and the fast service's handler, whose det and rec steps run
    on the model deployments."""

    async def __init__(self, args: AppArgs, **steps: DeploymentHandle):
        calls = {name: metrics.timed(ServeCall(handle, name, args.timeout), name)
                 for name, handle in steps.items()}
        metrics.note_engines({name: (await handle.where.remote())["engine"]
                              for name, handle in steps.items()})
        # The det resize rule is the ingress's step: it reads it from its node's det folder.
        folders = {"det": args.folder("det")} if "det" in steps else {}
        pipeline = OcrPipeline(calls.get("det"), calls.get("rec"),
                               pipeline_options(folders, args.ocr_options()))
        self.handler = KINDS[args.kind].handler(pipeline)
        self.handler.ready_checks.append(self._replicas_running)
        self._steps = list(steps)
        self._app = create_app(self.handler, args.settings())

    def __serve_build_asgi_app__(self):
        return self._app

    def _replicas_running(self) -> str | None:
        """Not ready while a model deployment has no running replica."""
        app = serve.status().applications.get(serve.get_replica_context().app_name)
        for name in self._steps:
            deployment = app.deployments.get(name) if app else None
            if deployment is None or not deployment.replica_states.get("RUNNING"):
                return f"no running {name} replica"
        return None


def build_app(args: AppArgs | dict) -> serve.Application:
    """The Serve application: the ingress bound to a deployment per model ``args.kind`` needs,
    each named after its model (det, rec; cls with ``use_cls``, bound to rec). A bad argument
    is refused here, by name, before any replica starts."""
    args = AppArgs.model_validate(args)
    names = model_names(args.kind, args.use_cls)
    cls = ModelReplica.options(name="cls").bind("cls", args) if "cls" in names else None
    steps = {name: ModelReplica.options(name=name).bind(name, args, cls if name == "rec" else None)
             for name in names if name != "cls"}
    return OcrIngress.options(name="ingress").bind(args, **steps)


def load_config(path: str | os.PathLike, *, port: int | None = None,
                **args) -> dict:
    """The Serve config file as a dict, its HTTP port and application arguments changed as given
    (the tests and the benchmark run the shipped config on ports of their own)."""
    config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if port is not None:
        config["http_options"] = {**config.get("http_options", {}), "host": "127.0.0.1",
                                  "port": port}
    for app_config in config["applications"]:
        app_config["args"] = {**app_config.get("args", {}), **args}
    return config


def with_deployments(config: dict, **deployments: dict) -> dict:
    """A copy of ``config`` with the fields of the named deployments replaced as given (a field
    given as ``None`` is removed): e.g. ``det={"num_replicas": 2, "autoscaling_config": None}``."""
    config = copy.deepcopy(config)
    for app_config in config["applications"]:
        for deployment in app_config.get("deployments", []):
            for key, value in deployments.get(deployment["name"], {}).items():
                if value is None:
                    deployment.pop(key, None)
                else:
                    deployment[key] = value
    return config


def run_config(config: dict) -> None:
    """Deploy ``config`` (a Serve config as a dict) on the Ray cluster this process is connected
    to and wait until it runs: what ``serve run config.yaml`` does, through the same Serve calls
    (``serve run`` has no Python form)."""
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    client = serve_api.serve_start(http_options=schema.http_options.model_dump(),
                                   proxy_location=schema.proxy_location)
    client.deploy_apps(schema, _blocking=True)


# The application with the default arguments: ``serve run pdserving.ray_app:app``.
app = build_app(AppArgs())
