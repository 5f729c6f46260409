"""``from paddle_serving_server.pipeline import PipelineClient``: the gRPC client of a pipeline
service (PaddleOCR's ``pipeline_rpc_client.py`` imports it from here)."""

from pdserving.pipeline_serving.client import PipelineClient

__all__ = ["PipelineClient"]
