"""API keys for every server of the kit, and the key its clients send (docs/design.md §2.11).

A server's keys are the union of ``--api_key KEY`` (repeatable: two keys while one is rotated
out), the lines of ``--api_key_file PATH`` (blank lines and ``#`` comments skipped) and the
comma-separated ``PDSERVING_API_KEYS``, read once at start. No key from any of them: auth off.
A request carries its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` (HTTP headers
or gRPC metadata alike). Keys are compared by their SHA-256 digests with
``hmac.compare_digest``, against every key, so neither a key's value nor its length shows in the
time of an answer; no message, log line, repr or metric ever holds a key.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import grpc

from pdserving.errors import Unauthorized

SERVER_ENV = "PDSERVING_API_KEYS"  # a server's keys, comma separated
CLIENT_ENV = "PDSERVING_API_KEY"   # the key our clients send unless told another
HEADER = "x-api-key"


class AuthError(ValueError):
    """A key source that cannot be used (an unreadable file, a key no header can carry)."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class Auth:
    """A server's keys (none: auth off) and whether ``/ready`` and ``/metrics`` stay open."""

    keys: tuple[str, ...] = field(default=(), repr=False)
    public_metrics: bool = False
    _digests: tuple[bytes, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_digests", tuple(_digest(k) for k in self.keys))

    @property
    def on(self) -> bool:
        return bool(self.keys)

    @property
    def client_key(self) -> str | None:
        """The key this server sends to the model servers it calls: its first."""
        return self.keys[0] if self.keys else None

    def allows(self, sent: str | None) -> bool:
        """True if auth is off or ``sent`` is one of the keys (every key compared)."""
        if not self.keys:
            return True
        given = _digest(sent or "")
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(given, digest)
        return found and sent is not None

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise Unauthorized unless ``headers`` (lower-case names) carry one of the keys."""
        sent = sent_key(headers)
        if not self.allows(sent):
            raise Unauthorized("missing API key: send Authorization: Bearer <key>"
                               if sent is None else "wrong API key")

    def check_status(self, headers: Mapping[str, str]) -> None:
        """The check of a web service's ``/ready`` and ``/metrics``: skipped with
        ``public_metrics``. (``/health``, the page and the API docs are never checked.)"""
        if not self.public_metrics:
            self.check(headers)

    def child_env(self) -> dict[str, str]:
        """The environment giving a child server these keys (never its command line, which
        ``ps`` shows to every user)."""
        return {SERVER_ENV: ",".join(self.keys)} if self.keys else {}


def sent_key(headers: Mapping[str, str]) -> str | None:
    """The key in ``Authorization: Bearer KEY``, else in ``X-API-Key``; None if neither."""
    scheme, _, value = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (headers.get(HEADER) or "").strip() or None


def _checked(keys: Iterable[str], where: str) -> list[str]:
    out = []
    for key in keys:
        key = key.strip()
        if not key:
            continue
        if not (key.isascii() and key.isprintable()) or " " in key:
            raise AuthError(f"an API key from {where} has a character a header cannot carry "
                            "(printable ASCII without spaces only)")
        out.append(key)
    return out


def _file_keys(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AuthError(f"--api_key_file {path}: {getattr(e, 'strerror', None) or e}") from None
    return _checked((ln for ln in lines if not ln.strip().startswith("#")),
                    f"--api_key_file {path}")


def load(keys: Iterable[str] = (), key_file: str | None = None, public_metrics: bool = False,
         environ: Mapping[str, str] = os.environ) -> Auth:
    """The union of the key sources, in order (flags, file, environment), repeats dropped."""
    found = [*_checked(keys, "--api_key"), *(_file_keys(key_file) if key_file else []),
             *_checked(environ.get(SERVER_ENV, "").split(","), SERVER_ENV)]
    return Auth(tuple(dict.fromkeys(found)), public_metrics)


def add_auth_flags(parser: argparse.ArgumentParser, metrics: bool = True) -> None:
    """The key flags of a server (``metrics``: it serves ``/ready`` and ``/metrics``)."""
    group = parser.add_argument_group(
        "API keys (docs/design.md §2.11)",
        f"Keys are the union of --api_key, --api_key_file and ${SERVER_ENV} (comma separated); "
        "with any, requests need 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
        "(gRPC: metadata authorization), else 401. /health stays open.")
    group.add_argument("--api_key", action="append", default=[], metavar="KEY",
                       help="a key clients may send; repeat it to accept several (rotation)")
    group.add_argument("--api_key_file", metavar="PATH",
                       help="a file of keys, one a line (blank lines and # comments skipped)")
    if metrics:
        group.add_argument("--public_metrics", action="store_true",
                           help="/ready and /metrics answer without a key")


def from_args(args: argparse.Namespace) -> Auth:
    """The server's keys from its flags and environment; AuthError if a source is bad."""
    return load(args.api_key, args.api_key_file, getattr(args, "public_metrics", False))


def add_client_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api_key", default=os.environ.get(CLIENT_ENV), metavar="KEY",
                        help=f"the server's API key (default: ${CLIENT_ENV})")


def client_key(key: str | None = None) -> str | None:
    """The key a client sends: ``key``, else ``PDSERVING_API_KEY``, else none."""
    return key or os.environ.get(CLIENT_ENV) or None


def bearer(key: str | None) -> dict[str, str]:
    """The HTTP headers (or gRPC metadata, as its items) sending ``key``; none without one."""
    return {"authorization": f"Bearer {key}"} if key else {}


class KeyInterceptor(grpc.ServerInterceptor):
    """A gRPC server's check: a call without one of the keys in its metadata ends at once with
    UNAUTHENTICATED, before any handler runs."""

    def __init__(self, auth: Auth):
        self.auth = auth

    def intercept_service(self, continuation, details):
        try:
            self.auth.check(dict(details.invocation_metadata or ()))
        except Unauthorized as e:
            message = e.message

            def refuse(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            return grpc.unary_unary_rpc_method_handler(refuse)
        return continuation(details)


def interceptors(auth: Auth | None) -> list[grpc.ServerInterceptor]:
    """A gRPC server's interceptors for ``auth``: none when it is off."""
    return [KeyInterceptor(auth)] if auth and auth.on else []
