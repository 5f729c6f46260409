"""The model server's gRPC layer: codec (ndarray <-> Tensor), server and client.

These modules are the only users of the generated code in ``pdserving.proto``.
"""
