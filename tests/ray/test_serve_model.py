"""The pipeline's det and rec steps on real replicas of the test cluster (``ServeCall`` as the
pipeline's step): the in-process pipeline's answers, and each way a call
fails is a 503 the web app turns into ``Retry-After`` (``Unavailable``), never a 500 or a hang."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from ray import serve

from pdserving.engine import EngineOptions
from pdserving.engine.load import load_models
from pdserving.engine.model_folder import ModelFolder
from pdserving.errors import Unavailable
from pdserving.ops.db import DetSettings
from pdserving.pipeline import DetStep, OcrPipeline
from pdserving.ray_app import AppArgs, ModelReplica, ServeCall
from tests.helpers.images import text_line
from tests.helpers.paths import ROOT
from tests.ray.conftest import model_handle

pytestmark = pytest.mark.ray


def test_a_det_replica_gives_the_in_process_detectors_boxes(ray_ocr, model_root, samples):
    loaded = load_models({"det": ModelFolder.read(model_root / "ocr_det_model")},
                         EngineOptions(engine="openvino", instances=1, threads=1))
    remote = OcrPipeline(ServeCall(model_handle("det"), "det", timeout=30), None)
    try:
        local = OcrPipeline(DetStep(loaded.models["det"]), None)
        for name, (data, _) in samples.items():
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            np.testing.assert_allclose(remote.detect(img), local.detect(img), atol=1e-3,
                                       err_msg=name)
    finally:
        loaded.close()


def test_a_rec_replica_reads_crops_as_the_fast_pipeline_does(ray_ocr):
    recognize = ServeCall(model_handle("rec"), "rec", timeout=30)
    [(text, score, angle)] = recognize([text_line("Hello 2026")])
    assert text == "Hello 2026" and score > 0.9 and angle == -1
    assert recognize([]) == []


def test_with_use_cls_a_rec_replica_turns_crops_upright_on_the_cls_deployment(ray_cluster,
                                                                           model_root):
    args = AppArgs(model_root=str(model_root), use_cls=True)
    free = {"ray_actor_options": {"num_cpus": 0}}  # the test cluster's 2 CPUs are taken
    cls = ModelReplica.options(name="cls", **free).bind("cls", args)
    handle = serve.run(ModelReplica.options(name="rec", **free).bind("rec", args, cls),
                       name="withcls", route_prefix=None)
    try:
        recognize = ServeCall(handle, "rec", timeout=30)
        line = text_line("Hello 2026")
        reads = recognize([line, cv2.rotate(line, cv2.ROTATE_180)])
        assert [(r.text, r.angle) for r in reads] == [("Hello 2026", 0), ("Hello 2026", 1)]
        assert [r.text for r in recognize([line], False)] == ["Hello 2026"]
        assert recognize([line], False)[0].angle == -1
    finally:
        serve.delete("withcls")


def test_a_call_over_its_time_limit_is_unavailable(ray_ocr):
    with pytest.raises(Unavailable, match="det call timed out after 0.001 s"):
        ServeCall(model_handle("det"), "det", timeout=0.001)(
            np.zeros((320, 320, 3), np.uint8), (1.0, 1.0), (320, 320, 3), DetSettings())


def test_a_full_deployment_is_unavailable_not_queued_forever(ray_cluster, model_root, caplog):
    """A deployment with a bounded queue (``max_queued_requests``) refuses the calls beyond its
    replica's one at a time and one waiting: each such call is Unavailable ("busy"). The six
    threads share one router (one queue): a handle first used by several threads at once would
    set up one each (Ray logs each set-up), and then the bound held per thread."""
    caplog.set_level(logging.INFO, logger="ray.serve")
    replica = ModelReplica.options(name="cls", max_ongoing_requests=1, max_queued_requests=1,
                                   ray_actor_options={"num_cpus": 0})  # the 2 CPUs are taken
    handle = serve.run(replica.bind("cls", AppArgs(model_root=str(model_root))),
                       name="busy", route_prefix=None)
    model = ServeCall(handle, "cls", timeout=30)
    crops = np.zeros((64, 3, 48, 192), np.float32)  # about 0.1 s a call

    def call(_) -> str:
        try:
            model(crops)
            return "ok"
        except Unavailable as e:
            return e.message

    try:
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(call, range(12)))
    finally:
        serve.delete("busy")
    routers = [m for m in caplog.messages
               if m.startswith("Initialized DeploymentHandle") and "'busy'" in m]
    assert len(routers) == 1
    assert "ok" in outcomes
    assert "cls replicas busy, retry later" in outcomes, outcomes
    assert set(outcomes) == {"ok", "cls replicas busy, retry later"}


def test_the_plain_install_does_not_import_ray():
    """The scripts' modules work without Ray (requirements-ray.txt is separate)."""
    code = ("import sys, pdserving.cli, pdserving.clients, pdserving.services, pdserving.serve, "
            "pdserving.web.app, pdserving.pipeline_serving.service; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
