"""A network namespace of its own for a command: a private 127.0.0.1 on which scripts with fixed
ports (the 2020 scripts' 9292 and 9293) run without touching the machine's ports."""

from __future__ import annotations

import os
import subprocess


def in_own_network(argv: list[str], *, cwd: str | os.PathLike, timeout: float,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in a new network namespace whose loopback is up; its output captured."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    command = [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *map(str, argv)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
