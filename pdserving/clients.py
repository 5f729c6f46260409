"""The client programs of the top-level scripts: ``ocr_web_client.py`` (the web service's
``/ocr/prediction``) and ``pipeline_http_client.py``, ``pipeline_rpc_client.py`` (a pipeline
service, as PaddleOCR's clients print its replies). Each takes a folder of images and exits 1
if any answer is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdserving.auth import add_client_flag, bearer
from pdserving.tls import TlsError, add_client_flags, client_tls


def ocr_web_client(argv: list[str]) -> int:
    """Post every image of a folder to the service and print each JSON answer."""
    import base64
    import json

    import httpx

    p = argparse.ArgumentParser(description=ocr_web_client.__doc__)
    p.add_argument("folder", nargs="?", default="samples",
                   help="folder of images (default: samples/ in the current folder)")
    p.add_argument("--url", default="http://127.0.0.1:9292/ocr/prediction")
    p.add_argument("--fetch", default="res", help="comma separated: res,dt_boxes,rec_scores")
    args = _parse(p, argv)
    images = _images(args.folder)
    if not images:
        print(f"error: no images in {args.folder}", file=sys.stderr)
        return 2
    failed = 0
    with _http_client(args) as client:
        for f in images:
            body = {"feed": [{"image": base64.b64encode(f.read_bytes()).decode()}],
                    "fetch": args.fetch.split(",")}
            try:
                r = client.post(args.url, json=body)
            except httpx.HTTPError as e:
                print(f"error: {args.url}: {e}", file=sys.stderr)
                return 1
            failed += r.status_code != 200
            print(f.name, json.dumps(r.json(), ensure_ascii=False))
    return 1 if failed else 0


def _parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments, with the TLS flags (``args.tls``: a ClientTls, or None for plain) and
    ``--api_key``."""
    add_client_flags(p)
    add_client_flag(p)
    args = p.parse_args(argv)
    try:
        args.tls = client_tls(args)
    except TlsError as e:
        p.error(str(e))
    return args


def _http_client(args: argparse.Namespace):
    """httpx's client for the TLS flags (``https://`` URLs; a CA of their own if given),
    sending ``--api_key`` with every request."""
    import httpx

    return httpx.Client(timeout=120, verify=args.tls.ssl_context() if args.tls else True,
                        headers=bearer(args.api_key))


def _images(folder: str) -> list[Path]:
    return sorted(f for f in Path(folder).iterdir()
                  if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif"})


def _pipeline_client(image_dir: str, call) -> int:
    """Each image of ``image_dir`` through ``call`` (base64 -> err_no, err_msg, values), printed
    as PaddleOCR's clients print a reply: the code, then one item per line (an OCR line is
    ``(text, score), box``). The values are read with ``ast.literal_eval``, not ``eval``: a
    reply is data, never code to run. Exit code 1 if any reply is an error."""
    import ast
    import base64

    failed = 0
    for f in _images(image_dir):
        print(f"{'*' * 10}{f.name}{'*' * 10}")
        err_no, err_msg, values = call(base64.b64encode(f.read_bytes()).decode())
        failed += err_no != 0
        print(f"err_no:{err_no}, err_msg:{err_msg}")
        for value in values:
            for item in ast.literal_eval(value):
                print(", ".join(map(str, item)) if isinstance(item, tuple) else item)
    return 1 if failed else 0


def pipeline_http_client(argv: list[str]) -> int:
    """Post every image of a folder to a pipeline service over HTTP and print its lines."""
    import json

    import httpx

    p = argparse.ArgumentParser(description=pipeline_http_client.__doc__)
    p.add_argument("--image_dir", default="samples")
    p.add_argument("--url", default="http://127.0.0.1:9998/ocr/prediction")
    args = _parse(p, argv)

    def call(image: str) -> tuple[int, str, list[str]]:
        # a JSON string body and no Content-Type, as PaddleOCR's client sends it
        reply = client.post(args.url, content=json.dumps({"key": ["image"], "value": [image]}))
        reply = reply.json()
        return reply["err_no"], reply["err_msg"], reply["value"]

    with _http_client(args) as client:
        try:
            return _pipeline_client(args.image_dir, call)
        except (httpx.HTTPError, ValueError) as e:
            print(f"error: {args.url}: {e}", file=sys.stderr)
            return 1


def pipeline_rpc_client(argv: list[str]) -> int:
    """Send every image of a folder to a pipeline service over gRPC and print its lines."""
    import grpc

    from pdserving.pipeline_serving.client import PipelineClient

    p = argparse.ArgumentParser(description=pipeline_rpc_client.__doc__)
    p.add_argument("--image_dir", default="samples")
    p.add_argument("--endpoint", default="127.0.0.1:18091")
    args = _parse(p, argv)
    client = PipelineClient()
    client.connect([args.endpoint], args.tls, api_key=args.api_key)

    def call(image: str) -> tuple[int, str, list[str]]:
        reply = client.predict({"image": image}, fetch=["res"], timeout=120)
        return reply.err_no, reply.err_msg, list(reply.value)

    try:
        return _pipeline_client(args.image_dir, call)
    except grpc.RpcError as e:
        print(f"error: {args.endpoint}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        client.close()
