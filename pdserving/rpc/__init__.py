"""The model server's RPC layer: codec (ndarray <-> Tensor), server (gRPC, and HTTP through
``dispatch`` and ``http`` on the same port) and client.

These modules are the only users of the generated code in ``pdserving.proto``. The client side
(``codec``, ``client``) imports neither the server nor any engine, so a client needs only grpcio,
protobuf and numpy.
"""


import grpc

from pdserving.net import PortInUse

MAX_BODY_SIZE = 512 * 1024 * 1024  # the largest message either side sends or takes (bytes)


def message_limits(size: int) -> list[tuple[str, int]]:
    """gRPC options for messages of up to ``size`` bytes, sent and received."""
    return [("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)]


def server_options(max_body_size: int) -> list[tuple[str, int]]:
    """A gRPC server's options. SO_REUSEPORT is off, so a second server on a port fails
    instead of silently sharing it."""
    return [*message_limits(max_body_size), ("grpc.so_reuseport", 0)]


def listen(server: grpc.Server, address: str,
           credentials: grpc.ServerCredentials | None = None) -> None:
    """``server`` takes calls on ``address`` once started (TLS only, with ``credentials``);
    PortInUse if it cannot (grpcio raises or returns 0, by version)."""
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:
        bound = 0
    if not bound:
        raise PortInUse(f"cannot listen on {address.removeprefix('unix:')}: port in use or "
                        "address not available")
