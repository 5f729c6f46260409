"""``python -m paddle_serving_app.package --get_model ocr_det|ocr_rec``: the bundled models."""

import sys

from pdserving.package import main

if __name__ == "__main__":
    sys.exit(main())
