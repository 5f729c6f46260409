"""TLS for the kit's servers and clients (docs/design.md §2.10).

A server given ``--tls_cert`` and ``--tls_key`` speaks TLS only, on HTTP and gRPC alike; with
``--tls_client_ca`` it also asks each client for a certificate that CA signed, and refuses a
client without one (mutual TLS). A client given ``--tls_ca`` trusts servers that CA signed
(else the system's CAs); ``--tls_cert``/``--tls_key`` on a client are its own certificate, for
servers that ask. The files are read once, at start, so a missing one is a clear error then.
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

# A server's flags default to these variables (the 2020 WebService scripts have no flags).
SERVER_ENV = {"tls_cert": "PDSERVING_TLS_CERT", "tls_key": "PDSERVING_TLS_KEY",
              "tls_client_ca": "PDSERVING_TLS_CLIENT_CA"}
ALPN_H2 = b"h2"
ALPN_HTTP1 = b"http/1.1"


class TlsError(ValueError):
    """A TLS flag that cannot be used: a file missing or unreadable, a cert without its key."""


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TlsError(f"{what} {path}: {e.strerror or e}") from None


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate chain and key (PEM files), and the CA its clients must show a
    certificate of, if any."""

    cert: str
    key: str
    client_ca: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """For HTTP sides: TLS 1.2 or newer, HTTP/1.1 named in ALPN (the only one we speak)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.client_ca)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            raise TlsError(f"--tls_cert {self.cert} / --tls_key {self.key}: {e}") from None
        context.verify_mode = ssl.CERT_REQUIRED if self.client_ca else ssl.CERT_NONE
        context.set_alpn_protocols([ALPN_HTTP1.decode()])
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(_read(self.key, "--tls_key"), _read(self.cert, "--tls_cert"))],
            root_certificates=_read(self.client_ca, "--tls_client_ca"),
            require_client_auth=self.client_ca is not None)


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts (``ca``; None: the system's CAs) and shows (``cert``, ``key``)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """For HTTP clients (httpx's ``verify``)."""
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(_read(self.ca, "--tls_ca"),
                                            _read(self.key, "--tls_key"),
                                            _read(self.cert, "--tls_cert"))


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS (docs/design.md §2.10); each flag defaults to "
                                      "its PDSERVING_ variable, e.g. PDSERVING_TLS_CERT")
    helps = {"tls_cert": "serve TLS only, with this certificate chain (PEM)",
             "tls_key": "the certificate's private key (PEM)",
             "tls_client_ca": "mutual TLS: refuse clients without a certificate this CA signed"}
    for name, text in helps.items():
        group.add_argument(f"--{name}", default=os.environ.get(SERVER_ENV[name]) or None,
                           help=text)


def add_client_flags(parser: argparse.ArgumentParser, prefix: str = "",
                     what: str = "the server") -> None:
    """``--tls_ca``, ``--tls_cert``, ``--tls_key`` (each after ``--{prefix}``)."""
    group = parser.add_argument_group(f"TLS to {what}")
    group.add_argument(f"--{prefix}tls_ca",
                       help=f"speak TLS, trusting {what} whose certificate this CA (PEM) signed")
    group.add_argument(f"--{prefix}tls_cert", help="the client's certificate, for mutual TLS")
    group.add_argument(f"--{prefix}tls_key", help="the client's private key, for mutual TLS")


def server_tls(args: argparse.Namespace) -> ServerTls | None:
    """The server's TLS from its flags; None without ``--tls_cert``. TlsError if incomplete."""
    cert, key, client_ca = args.tls_cert, args.tls_key, args.tls_client_ca
    if not cert and not key:
        if client_ca:
            raise TlsError("--tls_client_ca needs --tls_cert and --tls_key")
        return None
    if not (cert and key):
        raise TlsError("--tls_cert and --tls_key go together")
    tls = ServerTls(cert, key, client_ca)
    tls.ssl_context()
    return tls


def server_tls_from_env() -> ServerTls | None:
    """The server's TLS from ``PDSERVING_TLS_CERT`` and its fellows alone."""
    return server_tls(argparse.Namespace(**{name: os.environ.get(var) or None
                                            for name, var in SERVER_ENV.items()}))


def client_tls(args: argparse.Namespace, prefix: str = "") -> ClientTls | None:
    """A client's TLS from its flags; None (plain) unless one of them is given."""
    ca, cert, key = (getattr(args, f"{prefix}tls_{name}") for name in ("ca", "cert", "key"))
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise TlsError(f"--{prefix}tls_cert and --{prefix}tls_key go together")
    for path, flag in ((ca, "ca"), (cert, "cert"), (key, "key")):
        _read(path, f"--{prefix}tls_{flag}")
    return ClientTls(ca, cert, key)


def alpn_offered(hello: bytes) -> list[bytes] | None:
    """The ALPN protocols a TLS ClientHello offers (``hello``: the connection's first bytes);
    None while the first record is incomplete; [] if it offers none or cannot be read."""
    if len(hello) < 5:
        return None
    end = 5 + int.from_bytes(hello[3:5], "big")
    if len(hello) < end:
        return None
    body = memoryview(hello)[:end]
    try:
        # record header (5), handshake type and length (4), version (2), random (32)
        at = 5 + 4 + 2 + 32
        at += 1 + body[at]  # session id
        at += 2 + int.from_bytes(body[at:at + 2], "big")  # cipher suites
        at += 1 + body[at]  # compression methods
        stop = at + 2 + int.from_bytes(body[at:at + 2], "big")
        at += 2
        while at + 4 <= min(stop, end):
            kind = int.from_bytes(body[at:at + 2], "big")
            size = int.from_bytes(body[at + 2:at + 4], "big")
            at += 4
            if kind == 16:  # application_layer_protocol_negotiation
                names, i = [], at + 2
                while i < at + size:
                    names.append(bytes(body[i + 1:i + 1 + body[i]]))
                    i += 1 + body[i]
                return names
            at += size
    except IndexError:
        pass
    return []
