"""``python -m paddle_serving_server.serve --model ocr_det_model --port 9293``: the model server."""

import sys

from pdserving.serve import main

if __name__ == "__main__":
    sys.exit(main())
