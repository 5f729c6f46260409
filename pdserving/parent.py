"""A child process's tie to its parent: SIGTERM when the parent dies (Linux).

``launcher.ServerProcess`` names itself in the child's environment, and the child ties itself
when it imports pdserving, before anything else runs. The parent does not set the tie between
fork and exec (``preexec_fn``): Python run there, with gRPC's threads alive in the parent, left
children with gRPC's broken poller ("epoll_wait ... Bad file descriptor") that failed to start.
"""

from __future__ import annotations

import ctypes
import os
import signal

PARENT_ENV = "PDSERVING_PARENT_PID"  # set by the parent; read (and removed) by the child
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tie_to_parent() -> None:
    """Die with the parent that ``PARENT_ENV`` names, if any: at once if it is already gone
    (the kernel would not tell us). The variable is removed, so that this process's own
    children are not tied to it by mistake."""
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent.isdigit():
        return
    die_with_parent()
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)
