"""Paddle Serving's ``paddle_serving_client.io``, for 2020 scripts: the model converter."""

from pdserving.convert import inference_model_to_serving

__all__ = ["inference_model_to_serving"]
