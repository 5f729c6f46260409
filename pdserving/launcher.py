"""Model servers as child processes: the internal rec/det server of the web services, and tests.

The child is tied to its parent (it gets SIGTERM if the parent dies, ``pdserving.parent``), so a
killed web service leaves no orphan model server behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from pdserving.auth import Auth
from pdserving.engine import EngineOptions, engine_flags
from pdserving.net import free_port, wait_until
from pdserving.parent import PARENT_ENV

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def terminate(proc: subprocess.Popen, grace: float) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class ServerProcess:
    """A server in a child process, ready once it prints its "... ready on ..." line. The child
    ties itself to this process when it imports pdserving (every server of the kit does)."""

    def __init__(self, args: list[str], name: str, endpoint: str = "", *,
                 cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
                 extra_env: dict[str, str] | None = None):
        self.args = [str(a) for a in args]
        self.name = name
        self.endpoint = endpoint
        self.cwd = cwd
        self.env = env
        self.extra_env = extra_env or {}  # on top of ``env`` (or of this process's)
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self.ready_line = ""

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        """Start the server and wait for its ready line; raise with its output if it fails."""
        env = self.env
        if env is None:  # the child imports this pdserving wherever it was started from
            path = os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                 os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PYTHONPATH": path}
        env = {**env, **self.extra_env, PARENT_ENV: str(os.getpid())}
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=self.cwd, env=env)
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        try:
            # Waiting on the event itself: the line is seen the moment it is printed.
            wait_until(lambda: ready.wait(0.05) or self.proc.poll() is not None, timeout,
                       f"{self.name} ready", interval=0)
        except TimeoutError:
            pass
        if not ready.is_set():
            self.stop()
            raise RuntimeError(f"{self.name} failed to start: "
                               f"{' | '.join(self.output[-5:]) or 'no output'}")
        return self

    def _pump(self, ready: threading.Event) -> None:
        for line in self.proc.stdout:
            self.output.append(line.rstrip())
            del self.output[:-50]
            if " ready on " in line:
                self.ready_line = line.strip()
                ready.set()

    @property
    def engine(self) -> str:
        """The engine its ready line names (``openvino``, ``paddle``), or "" if none."""
        found = re.search(r"engine (\w+)", self.ready_line)
        return found.group(1) if found else ""

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code (None if never started)."""
        if self.proc is None:
            return None
        code = terminate(self.proc, grace)
        self.proc.stdout.close()
        return code

    def kill(self) -> None:
        """Die at once, as a crashed server would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def model_server(model_dir: str | os.PathLike, port: int, host: str = "127.0.0.1",
                 extra_args: list[str] | None = None) -> ServerProcess:
    """``python -m pdserving.serve`` for ``model_dir`` on ``host:port`` (not started yet)."""
    args = [sys.executable, "-m", "pdserving.serve", "--model", str(model_dir),
            "--port", str(port), "--host", host, *(extra_args or [])]
    return ServerProcess(args, f"model server {Path(model_dir).name} on {host}:{port}",
                         f"{host}:{port}")


def start_model_server(model_dir: str | os.PathLike, first_port: int, options: EngineOptions,
                       http: bool = True, auth: Auth = Auth()) -> ServerProcess:
    """A service's own model server: ``model_dir`` on ``options`` (sized) on the first free port
    from ``first_port``, started and warm (``RuntimeError`` naming why if it is not).
    ``http=False``: gRPC alone, for a server only our own client calls. ``auth``: it takes the
    service's API keys (given in its environment)."""
    args = [*engine_flags(options.sized()), *([] if http else ["--no-http"])]
    server = model_server(model_dir, free_port(first_port), extra_args=args)
    server.extra_env = auth.child_env()
    server.start(options.start_timeout)
    return server
