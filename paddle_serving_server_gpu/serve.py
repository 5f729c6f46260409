"""``python -m paddle_serving_server_gpu.serve --model ocr_det_model --gpu_ids 0``."""

import sys

from pdserving.serve import main

if __name__ == "__main__":
    sys.exit(main())
