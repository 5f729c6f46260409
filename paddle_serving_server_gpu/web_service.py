"""``from paddle_serving_server_gpu.web_service import WebService``: the same, on the GPU."""

from pdserving.compat.web_service import GpuWebService as WebService

__all__ = ["WebService"]
