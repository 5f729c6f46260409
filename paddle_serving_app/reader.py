"""``from paddle_serving_app.reader import ...``: the OCR steps under their 2020 names."""

from pdserving.compat.reader import *  # noqa: F403
from pdserving.compat.reader import __all__  # noqa: F401
