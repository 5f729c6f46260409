"""glibc heap settings, per kind of process; each is called once, early in the process.

Model workers keep freed buffers for the next run; the fast web service gives a request's big
buffers back to the OS when it is done. Elsewhere than glibc these do nothing.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc mallopt parameters


def _mallopt(*settings: tuple[int, int]) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for param, value in settings:
        libc.mallopt(param, value)


def for_models() -> None:
    """A process that runs models.

    Large freed buffers stay in the heap: Paddle's new executor frees intermediates after every
    run, and handing them back to the OS makes the next run pay page faults (det ~50% slower).
    One arena: each thread's own arena kept its own freed buffers (~20% more memory, no speed
    gained).
    """
    _mallopt((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 64 << 20), (M_ARENA_MAX, 1))


def for_fast_web_service() -> None:
    """The web process of a fast-mode service (its models run in worker processes).

    Requests' images and arrays are MBs each and live for one request. Buffers over 4 MB come
    from mmap and go back to the OS when freed (glibc would raise that threshold up to 32 MB as
    big buffers are freed, then keep them in the heap), and two arenas at most instead of one per
    busy thread, each holding its own freed memory: the web process kept 150-250 MB after a load
    run with glibc's defaults, about 100 MB with these, at the same speed.

    Not for standard mode: there the web process and the model server's front also build
    MB-sized protobuf messages for every request, and fresh pages for each cost more (c=1 p50
    +15%, measured) than the memory saved.
    """
    _mallopt((M_MMAP_THRESHOLD, 4 << 20), (M_ARENA_MAX, 2))
