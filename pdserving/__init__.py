"""pdserving: PaddleOCR's Paddle Serving deployment, re-created on current Python and Paddle."""

__version__ = "0.1.0"
