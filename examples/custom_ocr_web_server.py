"""A customised OCR service written the 2020 way (Paddle Serving's WebService API).

Usage: python examples/custom_ocr_web_server.py cpu|gpu [MIN_SCORE]   (run beside the model
folders, e.g. from the project folder; HTTP on 9292, ``POST /ocr/prediction``)

It changes the stock service in two ways: lines read with a score under MIN_SCORE (default 0.5)
are dropped, and each line comes with its score and its box:
``{"result": {"res": [...], "rec_scores": [...], "dt_boxes": [[[x, y], ...], ...]}}``.
Copy it and change ``preprocess``/``postprocess``: the steps are those of
``paddle_serving_app.reader`` (pdserving's own, under their 2020 names), and pdserving's web
layer (limits, JSON errors, /health, /metrics) stays underneath.
"""

import base64
import sys

import cv2
import numpy as np
from paddle_serving_app.local_predict import Debugger
from paddle_serving_app.reader import (DBPostProcess, Div, FilterBoxes, GetRotateCropImage,
                                       Normalize, OCRReader, ResizeByFactor, Sequential,
                                       SortedBoxes, Transpose)

if sys.argv[1] == "gpu":
    from paddle_serving_server_gpu.web_service import WebService
else:
    from paddle_serving_server.web_service import WebService

MIN_SCORE = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5


class ScoredOCRService(WebService):
    def init_det(self, det_model_dir):
        self.det_preprocess = Sequential([
            ResizeByFactor(32, 960), Div(255),
            Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), Transpose((2, 0, 1))])
        self.det_postprocess = DBPostProcess({"thresh": 0.3, "box_thresh": 0.5,
                                              "max_candidates": 1000, "unclip_ratio": 1.5,
                                              "min_size": 3})
        self.det = Debugger()
        self.det.load_model_config(det_model_dir, gpu=sys.argv[1] == "gpu")
        self.ocr_reader = OCRReader()

    def preprocess(self, feed=[], fetch=[]):
        raw = base64.b64decode(feed[0]["image"].encode("utf8"))
        im = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        # A reader op refuses what is not an image (400, "ResizeByFactor: expected an image").
        det_img = self.det_preprocess(im)
        ori_h, ori_w = im.shape[:2]
        _, new_h, new_w = det_img.shape
        det_out = self.det.predict(feed={"image": det_img[np.newaxis]}, fetch=["concat_1.tmp_0"])
        boxes = self.det_postprocess(det_out["concat_1.tmp_0"],
                                     [[new_h / ori_h, new_w / ori_w]])[0]
        boxes = SortedBoxes()(FilterBoxes(10, 10)(boxes, [ori_h, ori_w]))
        # Kept for postprocess: the hooks of this service run for one request at a time (set
        # thread_safe = True only when no request state is kept on self).
        self.boxes = boxes
        crops = [GetRotateCropImage()(im, box) for box in boxes]
        if not crops:
            return [], []
        max_wh_ratio = max(c.shape[1] / c.shape[0] for c in crops)
        batch = np.stack([self.ocr_reader.resize_norm_img(c, max_wh_ratio) for c in crops])
        return {"image": batch}, ["ctc_greedy_decoder_0.tmp_0", "softmax_0.tmp_0"]

    def postprocess(self, feed=[], fetch=[], fetch_map=None):
        lines = self.ocr_reader.postprocess(fetch_map, with_score=True)
        kept = [(text, score, box) for (text, score), box in zip(lines, self.boxes)
                if score >= MIN_SCORE]
        return {"res": [text for text, _, _ in kept],
                "rec_scores": [round(score, 6) for _, score, _ in kept],
                "dt_boxes": [box.astype(int).tolist() for _, _, box in kept]}


if __name__ == "__main__":
    service = ScoredOCRService(name="ocr")
    service.load_model_config("ocr_rec_model")
    service.prepare_server(workdir="workdir", port=9292, device=sys.argv[1])
    service.init_det("ocr_det_model")
    service.run_debugger_service(gpu=sys.argv[1] == "gpu")
    service.run_web_service()
