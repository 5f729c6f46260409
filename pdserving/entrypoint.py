"""The container image's command (``Containerfile``): ``[MODE] [FLAGS...]``.

One image serves every mode, picked by the first word; the flags after it go to that mode's own
command as they are (``--family``, ``--port``, ``--det_endpoints``, ...):

- ``fast`` (the default): ``ocr_local_server.py cpu`` on 9292, what ``make serve-fast`` runs;
- ``standard``: ``ocr_web_server.py cpu`` on 9292, det calls to ``--det_endpoints``;
- ``det``: the det model server, ``python -m pdserving.serve --model ocr_det_model`` on 9293;
- ``health``: the image's ``HEALTHCHECK``, a probe of the mode this container runs;
- ``models [--model_root DIR] [--family NAME]``: write the bundled models' folders (the image's
  build runs it, so that no container writes or fetches anything at start).

The mode runs in this process (PID 1 in a container), so ``podman stop``'s SIGTERM reaches the
server itself, which stops gracefully and exits 0. Model folders are read from the working
folder, where the image has them written at build time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path

# Where a running mode notes what ``health`` probes: HEALTHCHECK's command sees the image, not
# the arguments a container was started with. /tmp: writable by the image's user, also with
# --read-only (podman mounts a tmpfs there).
PROBE_FILE = Path(os.environ.get("PDSERVING_PROBE_FILE", "/tmp/pdserving-probe.json"))
DEFAULT_PROBE = {"kind": "http", "port": 9292}  # also the Ray image's, which runs `serve run`
HEALTH_TIMEOUT_S = 4.0


def _fast(argv: list[str]) -> int:
    from pdserving import cli
    return cli.ocr_local_server(argv)


def _standard(argv: list[str]) -> int:
    from pdserving import cli
    return cli.ocr_web_server(argv)


def _det(argv: list[str]) -> int:
    from pdserving import serve
    return serve.main(argv)


# mode: (run, the arguments put before the user's, the probe's kind and default port)
MODES = {
    "fast": (_fast, ["cpu"], "http", 9292),
    "standard": (_standard, ["cpu"], "http", 9292),
    "det": (_det, ["--model", "ocr_det_model", "--port", "9293"], "grpc", 9293),
}


def split(argv: list[str]) -> tuple[str, list[str]]:
    """The mode and its command's arguments (``cpu`` for the web services is implied)."""
    if argv and argv[0] in MODES:
        mode, rest = argv[0], argv[1:]
    else:
        mode, rest = "fast", argv
    defaults = MODES[mode][1]
    if defaults == ["cpu"] and rest and rest[0] in ("cpu", "gpu"):
        defaults = []
    return mode, defaults + rest  # argparse: a flag given twice keeps the user's, the last


def probe(mode: str, args: list[str]) -> dict:
    """What ``health`` asks: the port the mode's command will listen on, by its flags."""
    _, _, kind, default = MODES[mode]
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--port", type=int, default=default)
    known, _ = p.parse_known_args(args)
    return {"kind": kind, "port": known.port}


def health() -> int:
    """0 if the running mode answers: ``GET /health`` on a web service, a gRPC connection on
    the model server; 1 with the reason on stderr if not."""
    try:
        target = json.loads(PROBE_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        target = DEFAULT_PROBE
    except (OSError, ValueError) as e:
        print(f"unhealthy: {PROBE_FILE}: {e}", file=sys.stderr)
        return 1
    address = f"127.0.0.1:{target['port']}"
    try:
        if target["kind"] == "grpc":
            import grpc
            with grpc.insecure_channel(address) as channel:
                grpc.channel_ready_future(channel).result(timeout=HEALTH_TIMEOUT_S)
        else:
            with urllib.request.urlopen(f"http://{address}/health",
                                        timeout=HEALTH_TIMEOUT_S) as r:
                r.read()
    except Exception as e:  # any failure to answer is "unhealthy", with its reason
        print(f"unhealthy: {address}: {e or type(e).__name__}", file=sys.stderr)
        return 1
    return 0


def models(argv: list[str]) -> int:
    """Write det, rec and cls's folders under ``--model_root`` (default: here)."""
    from pdserving.families import add_family_flag
    from pdserving.package import MODELS, ensure_model, folders

    p = argparse.ArgumentParser(prog="models", description=models.__doc__)
    p.add_argument("--model_root", default=".")
    add_family_flag(p)
    args = p.parse_args(argv)
    for name in MODELS:
        print(ensure_model(folders(name, args.model_root)[0], args.family))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["health"]:
        return health()
    if argv[:1] == ["models"]:
        return models(argv[1:])
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    mode, args = split(argv)
    try:
        PROBE_FILE.write_text(json.dumps(probe(mode, args)), encoding="utf-8")
    except OSError as e:  # the service runs all the same; only its healthcheck cannot
        print(f"warning: {PROBE_FILE}: {e}", file=sys.stderr)
    return MODES[mode][0](args)


if __name__ == "__main__":
    sys.exit(main())
