"""``from pdserving.client import Client``: the import path of Paddle Serving's client."""

from pdserving.rpc.client import Client, RemoteModel, RpcError

__all__ = ["Client", "RemoteModel", "RpcError"]
