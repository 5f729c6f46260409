"""A file named by URL in a request (PaddleX's ``file`` may be one), fetched only from the hosts
the server was started with: a server that fetches any URL a client names lets that client
reach whatever the server can (SSRF). Redirects are followed only within those hosts; the
size and the time, all of it, are bounded."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from pdserving.errors import BadRequest, PayloadTooLarge

MAX_REDIRECTS = 5


def is_url(s: str) -> bool:
    return s[:8].lower().startswith(("http://", "https://"))


def download(url: str, hosts: tuple[str, ...], max_bytes: int, timeout: float) -> bytes:
    """The body at ``url``. BadRequest when its host (or a redirect's) is not in ``hosts``, or
    it cannot be fetched in ``timeout`` seconds; PayloadTooLarge over ``max_bytes``."""
    if not hosts:
        raise BadRequest("file is a URL, and this server fetches none (start it with "
                         "--allow_url_hosts HOST,... to allow some); send the file as base64")
    deadline = time.monotonic() + timeout
    sockets = []

    def trace(event: str, info: dict) -> None:  # each connection's socket, to cut at the deadline
        if event == "connection.connect_tcp.complete":
            sockets.append(info["return_value"].get_extra_info("socket"))

    def cut() -> None:  # a read blocked on a trickle (headers or body) ends at once
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target = _allowed(url, hosts)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BadRequest(f"file URL did not answer within {timeout:g} s")
                try:
                    with client.stream("GET", target, timeout=left,
                                       extensions={"trace": trace}) as response:
                        if not response.is_redirect:
                            if response.status_code != 200:
                                raise BadRequest(
                                    f"file URL answered HTTP {response.status_code}")
                            return _read(response, max_bytes, deadline, timeout)
                        url = str(response.next_request.url) if response.next_request else ""
                except httpx.HTTPError as e:
                    if isinstance(e, httpx.TimeoutException) or time.monotonic() >= deadline:
                        raise BadRequest(f"file URL did not answer within {timeout:g} s") from None
                    raise BadRequest(f"file URL cannot be fetched: {type(e).__name__}") from None
    finally:
        watchdog.cancel()
    raise BadRequest(f"file URL redirects more than {MAX_REDIRECTS} times")


def _allowed(url: str, hosts: tuple[str, ...]) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        raise BadRequest("file URL is not a valid URL") from None
    if target.scheme not in ("http", "https"):
        raise BadRequest(f"file URL scheme {target.scheme!r} is not one this server fetches "
                         "(http, https)")
    if target.host not in hosts:
        raise BadRequest(f"file URL host {target.host!r} is not one this server fetches from "
                         f"(--allow_url_hosts: {', '.join(hosts)})")
    return target


def _read(response: httpx.Response, max_bytes: int, deadline: float, timeout: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"file URL's body is {declared} bytes, over the limit of "
                              f"{max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"file URL's body is over the limit of {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise BadRequest(f"file URL did not answer within {timeout:g} s")
        chunks.append(chunk)
    if time.monotonic() > deadline:  # cut at the deadline: a body read to its close ends early
        raise BadRequest(f"file URL did not answer within {timeout:g} s")
    return b"".join(chunks)
