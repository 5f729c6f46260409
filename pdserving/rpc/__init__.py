"""The model server's gRPC layer: codec (ndarray <-> Tensor), server and client.

These modules are the only users of the generated code in ``pdserving.proto``. The client side
(``codec``, ``client``) imports neither the server nor any engine, so a client needs only grpcio,
protobuf and numpy.
"""

MAX_BODY_SIZE = 512 * 1024 * 1024  # the largest message either side sends or takes (bytes)
