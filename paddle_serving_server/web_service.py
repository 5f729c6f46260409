"""``from paddle_serving_server.web_service import WebService``: the class 2020 scripts subclass."""

from pdserving.compat.web_service import WebService

__all__ = ["WebService"]
