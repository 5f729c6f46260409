"""A pipeline service's ``config.yml`` (docs/design.md §6.1) read into pdserving's settings.

PaddleOCR's keys map onto what already runs the other services: ``http_port`` and ``rpc_port``
are the two fronts; ``worker_num`` the requests processed at once (admission); each op's
``concurrency`` the model instances (OpenVINO streams or Paddle worker processes, at most one per
core on the CPU); ``timeout`` (ms) the request's time limit; ``local_service_conf`` the model
folder, the device and the engine switches. Keys Paddle Serving reads that mean nothing here
(DAG tracing, retries, thread or process ops) are accepted silently; any other keys are named
in one warning line; a missing or mistyped value is a one-line ``ConfigError`` naming the key.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pdserving.engine import PRECISIONS, EngineOptions, engine_options, parse_gpu_ids
from pdserving.web.app import WebSettings

log = logging.getLogger(__name__)

# Read by Paddle Serving, without a counterpart here: accepted, and ignored without a word.
_IGNORED = {
    "": {"build_dag_each_worker", "dag", "prometheus_port", "name"},
    "op": {"retry", "batch_size", "auto_batching_timeout", "input_ops"},
    "conf": {"client_type", "fetch_list", "device_type", "mkldnn_cache_capacity",
             "mkldnn_op_list", "mkldnn_bf16_op_list", "min_subgraph_size", "use_calib",
             "use_lite", "use_xpu", "use_ascend_cl", "dynamic_shape_info"},
}
_USED = {
    "": {"rpc_port", "http_port", "worker_num", "op"},
    "op": {"concurrency", "timeout", "local_service_conf"},
    "conf": {"model_config", "devices", "ir_optim", "use_mkldnn", "mem_optim", "thread_num",
             "precision", "use_trt"},
}


class ConfigError(ValueError):
    """A config file that cannot be served; the message is one line naming the key."""


@dataclass(frozen=True)
class PipelineConfig:
    http_port: int
    rpc_port: int
    model_dirs: dict[str, Path]  # op name ("det", "rec") -> model folder
    engine: EngineOptions
    settings: WebSettings


def load(path: str | os.PathLike, ops: tuple[str, ...], engine: str | None = None
         ) -> PipelineConfig:
    """Read ``path`` for a service running the ``ops`` ("det", "rec"); model folders are
    relative to the file's folder. ``engine`` overrides the default engine."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not YAML: {' '.join(str(e).split())}") from None
    reader = _Reader(path)
    top = reader.table(doc, "")
    reader.check_keys(top, "", "")
    http_port = reader.number(top, "http_port", None, low=1)
    rpc_port = reader.number(top, "rpc_port", http_port + 1, low=1)
    op_tables = reader.table(top.get("op"), "op")
    missing = [name for name in ops if name not in op_tables]
    if missing:
        raise ConfigError(f"op.{missing[0]}: missing (this service runs the ops "
                          f"{', '.join(ops)})")
    reader.unknown += sorted(f"op.{name}" for name in op_tables.keys() - set(ops))

    model_dirs, concurrency, timeout_ms, engines = {}, [], 0, []
    for name in ops:
        where = f"op.{name}"
        op = reader.table(op_tables[name], where)
        if "server_endpoints" in op:
            raise ConfigError(f"{where}.server_endpoints: remote model servers are not "
                              "supported in a pipeline config; remove it to run the op "
                              "in-process (local_service_conf)")
        reader.check_keys(op, "op", where)
        concurrency.append(reader.number(op, "concurrency", 1, where, low=1))
        timeout_ms += max(0, reader.number(op, "timeout", -1, where))
        where = f"{where}.local_service_conf"
        conf = reader.table(op.get("local_service_conf"), where)
        reader.check_keys(conf, "conf", where)
        model_dirs[name] = path.parent / reader.text(conf, "model_config", None, where)
        engines.append((where, reader.engine(conf, where, engine)))

    (_, options), *others = engines
    for where, other in others:
        if other != options:
            raise ConfigError(f"{where}: devices and engine settings must be the same for "
                              f"every op (here they differ from op.{ops[0]}'s)")
    cores = len(os.sched_getaffinity(0))
    instances = max(concurrency) if options.gpu_ids else min(max(concurrency), cores)
    options = replace(options, instances=instances)
    settings = WebSettings(max_in_flight=reader.number(top, "worker_num", 2, low=1),
                           **({"request_timeout": timeout_ms / 1000} if timeout_ms else {}))
    if reader.unknown:
        log.warning("warning: %s: unknown key%s %s; ignored", path,
                    "s" * (len(reader.unknown) > 1), ", ".join(reader.unknown))
    return PipelineConfig(http_port, rpc_port, model_dirs, options, settings)


class _Reader:
    """Typed reads of the YAML document, each naming the key on failure."""

    def __init__(self, path: Path):
        self.path = path
        self.unknown: list[str] = []  # keys read by nobody, for one warning line

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, value: Any, where: str) -> dict:
        if value is None and where:
            raise self.fail(where, "missing")
        if not isinstance(value, dict):
            raise self.fail(where or "top level", "must be a mapping of keys to values")
        return value

    def check_keys(self, table: dict, level: str, where: str) -> None:
        unknown = sorted(map(str, table.keys() - _USED[level] - _IGNORED[level]))
        self.unknown += [_name(where, k) for k in unknown]

    def _get(self, table: dict, key: str, default: Any, where: str) -> Any:
        value = table.get(key, default)
        if value is None:
            raise self.fail(_name(where, key), "missing")
        return value

    def number(self, table: dict, key: str, default: int | None, where: str = "",
               low: int | None = None) -> int:
        value = self._get(table, key, default, where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(_name(where, key), f"must be a whole number, not {value!r}")
        if low is not None and value < low:
            raise self.fail(_name(where, key), f"must be at least {low}, not {value}")
        return value

    def text(self, table: dict, key: str, default: str | None, where: str) -> str:
        value = self._get(table, key, default, where)
        if not isinstance(value, str) or not value:
            raise self.fail(_name(where, key), f"must be a non-empty string, not {value!r}")
        return value

    def flag(self, table: dict, key: str, default: bool, where: str) -> bool:
        value = self._get(table, key, default, where)
        if not isinstance(value, bool):
            raise self.fail(_name(where, key), f"must be true or false, not {value!r}")
        return value

    def engine(self, conf: dict, where: str, engine: str | None) -> EngineOptions:
        """The engine settings of one op's ``local_service_conf``, on ``engine`` if named."""
        devices = str(self._get(conf, "devices", "", where))
        try:
            gpu_ids = parse_gpu_ids(devices)
        except argparse.ArgumentTypeError as e:
            raise self.fail(_name(where, "devices"), str(e)) from None
        threads = conf.get("thread_num")
        precision = self.text(conf, "precision", "fp32", where).lower()
        if precision not in PRECISIONS:
            raise self.fail(_name(where, "precision"), f"{precision!r} is not one of "
                                                       f"{', '.join(PRECISIONS)}")
        return engine_options(
            engine, gpu_ids,
            threads=None if threads is None else self.number(conf, "thread_num", 1, where, 1),
            precision=precision,
            ir_optim=self.flag(conf, "ir_optim", True, where),
            mkldnn=self.flag(conf, "use_mkldnn", True, where),
            mem_optim=self.flag(conf, "mem_optim", True, where),
            use_trt=self.flag(conf, "use_trt", False, where))


def _name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
