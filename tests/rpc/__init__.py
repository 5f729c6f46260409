"""Tests of pdserving.rpc: the tensor codec, the gRPC model server, the client, the .proto."""
