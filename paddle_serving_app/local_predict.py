"""``from paddle_serving_app.local_predict import Debugger``: a served model in-process."""

from pdserving.compat.local_predict import Debugger

LocalPredictor = Debugger  # its later name

__all__ = ["Debugger", "LocalPredictor"]
