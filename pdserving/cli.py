"""Entry points of the top-level service scripts (``ocr_web_server.py cpu`` and friends).

Each script is ``sys.exit(cli.<name>(sys.argv[1:]))``; here the arguments become objects: the
models (in-process for the ``*_local_server`` scripts, behind RPC for the ``*_web_server``
ones), a handler, and the web app. The client scripts' programs are in ``pdserving.clients``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from pdserving import auth, malloc, metrics
from pdserving.engine import (ENGINES, EngineError, EngineOptions, add_engine_flags,
                              check_options, options_from_flags, parse_gpu_ids)
from pdserving.engine.load import check_formats
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.process_pool import WorkerError
from pdserving.families import add_family_flag
from pdserving.launcher import start_model_server
from pdserving.net import PortInUse
from pdserving.package import ensure_model, pipeline_folders
from pdserving.pipeline import OcrOptions
from pdserving.services import KINDS, local_handler, remote_handler
from pdserving.tls import add_client_flags, add_server_flags, client_tls, server_tls
from pdserving.web.app import WebSettings, create_app
from pdserving.web.runner import run

MiB = 1 << 20


def _parser(description: str, standard: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("device", nargs="?", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=9292)
    p.add_argument("--model_root", default=".",
                   help="folder with ocr_det_model/, ocr_rec_model/ (made from the bundled "
                        "models when missing)")
    add_family_flag(p)
    p.add_argument("--gpu_ids", "--gpu_id", type=parse_gpu_ids, default=(0,),
                   help="with gpu: the GPUs, comma separated; each model gets one worker on "
                        "each (more with --instances, taking the GPUs in turn)")
    add_engine_flags(p)
    p.add_argument("--use_cls", action="store_true", help="180-degree classifier on crops")
    p.add_argument("--drop_score", type=float, default=0.0,
                   help="drop lines whose rec score is below this (PaddleOCR uses 0.5)")
    p.add_argument("--max_in_flight", type=int, default=WebSettings.max_in_flight)
    p.add_argument("--max_queue", type=int, default=WebSettings.max_queue)
    p.add_argument("--max_body_size", type=int, default=WebSettings.max_body_bytes // MiB,
                   help="MiB")
    p.add_argument("--max_image_pixels", type=int, default=WebSettings.max_image_pixels)
    p.add_argument("--timeout", type=float, default=WebSettings.request_timeout,
                   help="seconds per request")
    p.add_argument("--max_pdf_pages", type=int, default=WebSettings.max_pdf_pages,
                   help="POST /ocr: pages of a PDF (more is refused)")
    p.add_argument("--no_visualize", action="store_true",
                   help="POST /ocr: no pictures in answers unless a request asks (visualize)")
    p.add_argument("--allow_url_hosts", type=_hosts, default=(), metavar="HOST,...",
                   help="POST /ocr: hosts whose URLs a request may name as its file "
                        "(default: none, URLs refused)")
    auth.add_auth_flags(p)
    if standard:
        p.add_argument("--det_endpoints", default="127.0.0.1:9293",
                       help="det model server(s), comma separated (ocr_web_server only); "
                            "called with this service's first API key, else "
                            f"${auth.CLIENT_ENV}")
        p.add_argument("--model_port", type=int, default=12000,
                       help="first port tried for the internal model server")
        add_client_flags(p, "det_", "the det model servers")
    add_server_flags(p)
    return p


def _engine_options(args) -> EngineOptions:
    """Engine settings from the flags, refused at once if they cannot work here."""
    options = options_from_flags(args, args.gpu_ids if args.device == "gpu" else ())
    check_options(options)
    return options


def _hosts(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(",") if h.strip())


def _settings(args) -> WebSettings:
    """The web app's settings; AuthError if a key source cannot be read."""
    return WebSettings(max_body_bytes=args.max_body_size * MiB,
                       max_image_pixels=args.max_image_pixels, max_in_flight=args.max_in_flight,
                       max_queue=args.max_queue, request_timeout=args.timeout,
                       max_pdf_pages=args.max_pdf_pages, visualize=not args.no_visualize,
                       url_hosts=args.allow_url_hosts, auth=auth.from_args(args))


def _ocr_options(args) -> OcrOptions:
    return OcrOptions(use_cls=args.use_cls, drop_score=args.drop_score)


def _local(kind: str, description: str, argv: list[str]) -> int:
    args = _parser(description, standard=False).parse_args(argv)
    malloc.for_fast_web_service()
    try:
        tls = server_tls(args)
        settings = _settings(args)
        handler = local_handler(kind, args.model_root, _engine_options(args), _ocr_options(args),
                                family=args.family)
    except (EngineError, FileNotFoundError, ValueError, WorkerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(create_app(handler, settings, on_shutdown=[handler.close]),
               args.host, args.port, tls=tls)


def _standard(kind: str, description: str, argv: list[str]) -> int:
    """Web service whose own model server (rec, or det for det-only) runs as a child process."""
    args = _parser(description, standard=True).parse_args(argv)
    root = Path(args.model_root)
    own = KINDS[kind].own
    try:
        tls, det_tls = server_tls(args), client_tls(args, "det_")
        settings = _settings(args)
        engine = _engine_options(args)
        model_dir = ensure_model(pipeline_folders(own, root)[0], args.family, engine.engine)
        # Refused here, in one line, rather than by the child model server.
        check_formats({own: ModelFolder.read(model_dir)}, engine)
    except (EngineError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:  # only our own client calls it: gRPC alone, straight on its port
        child = start_model_server(model_dir, args.model_port, engine, http=False,
                                   auth=settings.auth)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    metrics.note_engines({own: child.engine})
    try:
        endpoints = {"det": args.det_endpoints.split(","), own: [child.endpoint]}
        try:
            handler = remote_handler(kind, root, endpoints, _ocr_options(args), args.family,
                                     engine.engine, {"det": det_tls},
                                     api_key=settings.auth.client_key)
        except (EngineError, FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return run(create_app(handler, settings, on_shutdown=[child.stop]),
                   args.host, args.port, tls=tls)
    finally:
        child.stop()


def ocr_web_server(argv: list[str]) -> int:
    return _standard("ocr", "Standard OCR service: det over RPC (9293), rec on its own model "
                     "server, HTTP on 9292.", argv)


def ocr_local_server(argv: list[str]) -> int:
    return _local("ocr", "Fast OCR service: det and rec in-process, HTTP on 9292.", argv)


def det_web_server(argv: list[str]) -> int:
    return _standard("det", "Det-only service, det on its own model server.", argv)


def det_local_server(argv: list[str]) -> int:
    return _local("det", "Det-only service, det in-process.", argv)


def rec_web_server(argv: list[str]) -> int:
    return _standard("rec", "Rec-only service, rec on its own model server.", argv)


def rec_local_server(argv: list[str]) -> int:
    return _local("rec", "Rec-only service, rec in-process.", argv)


def pipeline_service(kind: str, argv: list[str]) -> int:
    """PaddleOCR's pipeline service (``web_service.py --config=config.yml``): HTTP and gRPC
    ``PipelineService`` on the config's ports, the models in-process."""
    from pdserving.pipeline_serving import config as pipeline_config
    from pdserving.pipeline_serving.service import DROP_SCORE, Pipeline, http_front, serve_grpc

    p = argparse.ArgumentParser(description=pipeline_service.__doc__.split("\n")[0])
    p.add_argument("--config", default="config.yml", help="the pipeline config (config.yml)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="openvino (the CPU default) or paddle (the GPU engine)")
    add_family_flag(p)
    add_server_flags(p)
    auth.add_auth_flags(p)
    args = p.parse_args(argv)
    try:
        tls = server_tls(args)
        keys = auth.from_args(args)
        conf = pipeline_config.load(args.config, KINDS[kind].models, args.engine)
        handler = local_handler(kind, engine=conf.engine, model_dirs=conf.model_dirs,
                                options=OcrOptions(drop_score=DROP_SCORE), family=args.family)
    except (pipeline_config.ConfigError, EngineError, FileNotFoundError, ValueError,
            WorkerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings = replace(conf.settings, auth=keys)
    pipeline = Pipeline(handler, kind, settings.max_image_pixels)
    try:
        rpc = serve_grpc(pipeline, args.host, conf.rpc_port, settings, tls)
    except PortInUse as e:
        handler.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    app = create_app(handler, settings, front=http_front(pipeline),
                     on_shutdown=[lambda: rpc.stop(5).wait(), handler.close])
    return run(app, args.host, conf.http_port, tls=tls,
               also=f", gRPC PipelineService on {args.host}:{conf.rpc_port}")
