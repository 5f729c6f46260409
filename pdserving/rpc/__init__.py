"""The model server's RPC layer: codec (ndarray <-> Tensor), server (gRPC, and HTTP through
``dispatch`` and ``http`` on the same port) and client.

These modules are the only users of the generated code in ``pdserving.proto``. The client side
(``codec``, ``client``) imports neither the server nor any engine, so a client needs only grpcio,
protobuf and numpy.
"""

MAX_BODY_SIZE = 512 * 1024 * 1024  # the largest message either side sends or takes (bytes)
