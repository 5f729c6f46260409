"""config.yml -> pdserving settings: the shipped file, PaddleOCR's own keys, and every refusal
(one line naming the key)."""

import logging
import os
import subprocess
import sys

import pytest
import yaml

from pdserving.pipeline_serving.config import ConfigError, load
from tests.helpers.paths import ROOT

SHIPPED = yaml.safe_load((ROOT / "config.yml").read_text())
CORES = len(os.sched_getaffinity(0))


def write(tmp_path, doc) -> str:
    path = tmp_path / "config.yml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def edited(**changes) -> dict:
    """The shipped config with ``changes`` applied; keys are dotted paths, None deletes."""
    doc = yaml.safe_load((ROOT / "config.yml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        table = doc
        for key in parents:
            table = table[key]
        if value is None:
            del table[last]
        else:
            table[last] = value
    return doc


def test_the_shipped_config_reads_as_the_fast_service_on_the_cpu(caplog):
    conf = load(ROOT / "config.yml", ("det", "rec"), engine="openvino")
    assert (conf.http_port, conf.rpc_port) == (9998, 18091)
    assert conf.model_dirs == {"det": ROOT / "ocr_det_model", "rec": ROOT / "ocr_rec_model"}
    assert conf.engine.engine == "openvino" and conf.engine.gpu_ids == ()
    assert conf.engine.instances == 1 and conf.engine.ir_optim
    assert conf.settings.max_in_flight == 2 and conf.settings.request_timeout == 60
    assert not caplog.records  # every key of the shipped file is known


def test_paddleocr_values_map_onto_admission_and_engine_settings(tmp_path):
    doc = edited(worker_num=10, op__det__concurrency=8, op__rec__concurrency=4,
                 op__det__timeout=2000, op__rec__timeout=3000)
    for op in ("det", "rec"):
        doc["op"][op]["local_service_conf"].update(thread_num=3, ir_optim=False,
                                                   use_mkldnn=False)
    conf = load(write(tmp_path, doc), ("det", "rec"), engine="paddle")
    assert conf.settings.max_in_flight == 10
    assert conf.settings.request_timeout == 5.0      # the ops' time limits, added up
    assert conf.engine.instances == min(8, CORES)    # at most one model instance per core
    assert (conf.engine.threads, conf.engine.ir_optim, conf.engine.mkldnn) == (3, False, False)


def test_rpc_port_defaults_to_http_port_plus_one_and_folders_are_relative_to_the_file(tmp_path):
    conf = load(write(tmp_path, edited(rpc_port=None, http_port=8000)), ("det",))
    assert conf.rpc_port == 8001
    assert conf.model_dirs == {"det": tmp_path / "ocr_det_model"}


def test_gpu_devices(tmp_path):
    doc = edited()
    for op in ("det", "rec"):
        doc["op"][op]["local_service_conf"]["devices"] = "0,1"
    conf = load(write(tmp_path, doc), ("det", "rec"))
    assert conf.engine.gpu_ids == (0, 1) and conf.engine.engine == "paddle"


def test_unknown_keys_are_named_in_one_warning_line(tmp_path, caplog):
    doc = edited(colour="blue", op__det__flavour=1, op__cls={"concurrency": 1})
    doc["op"]["rec"]["local_service_conf"]["speed"] = "fast"
    path = write(tmp_path, doc)
    with caplog.at_level(logging.WARNING):
        load(path, ("det", "rec"))
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {path}: unknown keys colour, op.cls, op.det.flavour, "
        "op.rec.local_service_conf.speed; ignored"]


BAD = {  # changes -> what the one-line error names
    "no http_port": (dict(http_port=None), "http_port: missing"),
    "port not a number": (dict(http_port="x"), "http_port: must be a whole number"),
    "worker_num zero": (dict(worker_num=0), "worker_num: must be at least 1"),
    "no op table": (dict(op=None), "op: missing"),
    "no rec op": (dict(op__rec=None), "op.rec: missing"),
    "no model_config": (dict(op__det__local_service_conf__model_config=None),
                        "op.det.local_service_conf.model_config: missing"),
    "bad devices": (dict(op__det__local_service_conf__devices="gpu0"),
                    "op.det.local_service_conf.devices: GPU ids are numbers"),
    "ir_optim not a bool": (dict(op__rec__local_service_conf__ir_optim="yes"),
                            "op.rec.local_service_conf.ir_optim: must be true or false"),
    "int8": (dict(op__rec__local_service_conf__precision="int8"),
             "op.rec.local_service_conf.precision: 'int8' is not one of"),
    "concurrency": (dict(op__det__concurrency=-1), "op.det.concurrency: must be at least 1"),
    "devices differ": (dict(op__rec__local_service_conf__devices="0"),
                       "op.rec.local_service_conf: devices and engine settings must be the same"),
    "remote op": (dict(op__det__server_endpoints=["127.0.0.1:9393"]),
                  "op.det.server_endpoints: remote model servers are not supported"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_config_is_one_line_naming_the_key(tmp_path, case):
    changes, message = BAD[case]
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, edited(**changes)), ("det", "rec"))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        load(tmp_path / "missing.yml", ("det",))
    with pytest.raises(ConfigError, match="not YAML"):
        load(write(tmp_path, "op: [unclosed\n"), ("det",))
    with pytest.raises(ConfigError, match="top level: must be a mapping"):
        load(write(tmp_path, "- a list\n"), ("det",))


def test_web_service_exits_2_with_one_line_for_a_bad_config(tmp_path):
    path = write(tmp_path, edited(op__det__local_service_conf__ir_optim="maybe"))
    run = subprocess.run([sys.executable, str(ROOT / "web_service.py"), f"--config={path}"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {path}: op.det.local_service_conf.ir_optim: must be true or false, not 'maybe'"]
