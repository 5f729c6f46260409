"""Running a web app with uvicorn: a clear start, a clear failure, a graceful stop.

We bind the listening socket ourselves, so a port already in use is one line on stderr and exit
code 1 (uvicorn would log it and ``sys.exit`` from deep inside). On SIGTERM or SIGINT uvicorn
stops accepting, lets in-flight requests finish for up to ``graceful_timeout`` seconds, then runs
the app's shutdown callbacks (``create_app(on_shutdown=...)``).
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from starlette.applications import Starlette

from pdserving.net import PortInUse, bind, raise_fd_limit
from pdserving.tls import ServerTls
from pdserving.web.app import PREDICT_PATH
from pdserving.web.connections import GuardedH11Protocol


# uvicorn's HTTP parser and event loop, named for every server of ours: uvicorn would pick
# httptools and uvloop where installed (Ray brings them), and our servers must parse requests the
# same way on every install. The parser is h11's, with bounds for idle and slow clients.
PARSER_AND_LOOP = {"http": GuardedH11Protocol, "loop": "asyncio"}


class _Server(uvicorn.Server):
    """uvicorn's server, announcing once it listens (scripts and tests wait for this line)."""

    def __init__(self, config: uvicorn.Config, ready_line: str):
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.ready_line, flush=True)


def config(app: Starlette, tls: ServerTls | None = None, **options) -> uvicorn.Config:
    """uvicorn's settings for ``app``, with our parser and loop, and TLS if ``tls``."""
    settings = uvicorn.Config(app, **PARSER_AND_LOOP, **options)
    if tls is not None:
        settings.load()
        settings.ssl = tls.ssl_context()  # ours: uvicorn's own names no ALPN protocol
    return settings


def run(app: Starlette, host: str = "0.0.0.0", port: int = 9292, *,
        graceful_timeout: int = 10, log_level: str = "info", also: str = "",
        tls: ServerTls | None = None) -> int:
    """Serve ``app`` until SIGTERM/SIGINT; the exit code: 0 after a stop, 1 if the port is
    taken, 130 after Ctrl-C. (On SIGTERM uvicorn re-raises the signal once the shutdown is
    done, so the process ends as killed by SIGTERM, as supervisors expect.) ``also`` ends the
    ready line (e.g. the other port a process serves on)."""
    raise_fd_limit()
    try:
        sock = bind(host, port)
    except PortInUse as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    service = getattr(app.state, "service", "web")
    path = getattr(app.state, "predict_path", PREDICT_PATH)
    settings = config(app, tls, host=host, port=port, log_level=log_level,
                      timeout_graceful_shutdown=graceful_timeout)
    scheme = "https" if tls else "http"
    server = _Server(settings, f"pdserving {service} service ready on "
                               f"{scheme}://{host}:{sock.getsockname()[1]}{path}{also}")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close()
    return 0

