# Fast OCR service in the 2020 form: det through Debugger, rec behind run_debugger_service, both
# in this process, HTTP on 9292.
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
elif sys.argv[1] == "cpu":
    from paddle_serving_server.web_service import WebService


class OCRService(WebService):
    def init_det_debugger(self, det_model_config):
        self.det_preprocess = Sequential([
            ResizeByFactor(32, 960), Div(255),
            Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), Transpose((2, 0, 1))])
        self.det_client = Debugger()
        self.det_client.load_model_config(det_model_config, gpu=sys.argv[1] == "gpu",
                                          profile=False)
        self.ocr_reader = OCRReader()

    def preprocess(self, feed=[], fetch=[]):
        raw = base64.b64decode(feed[0]["image"].encode("utf8"))
        im = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        ori_h, ori_w, _ = im.shape
        det_img = self.det_preprocess(im)
        _, new_h, new_w = det_img.shape
        det_img = det_img[np.newaxis, :].copy()
        det_out = self.det_client.predict(feed={"image": det_img}, fetch=["concat_1.tmp_0"])
        post = DBPostProcess({"thresh": 0.3, "box_thresh": 0.5, "max_candidates": 1000,
                              "unclip_ratio": 1.5, "min_size": 3})
        ratios = [float(new_h) / ori_h, float(new_w) / ori_w]
        boxes = post(det_out["concat_1.tmp_0"], [ratios])
        boxes = FilterBoxes(10, 10)(boxes[0], [ori_h, ori_w])
        boxes = SortedBoxes()(boxes)
        crop = GetRotateCropImage()
        crops = [crop(im, box) for box in boxes]
        if not crops:
            return [], []
        max_wh_ratio = max(c.shape[1] * 1.0 / c.shape[0] for c in crops)
        _, h, w = self.ocr_reader.resize_norm_img(crops[0], max_wh_ratio).shape
        batch = np.zeros((len(crops), 3, h, w)).astype("float32")
        for i, c in enumerate(crops):
            batch[i] = self.ocr_reader.resize_norm_img(c, max_wh_ratio)
        return {"image": batch.copy()}, ["ctc_greedy_decoder_0.tmp_0", "softmax_0.tmp_0"]

    def postprocess(self, feed={}, fetch=[], fetch_map=None):
        lines = self.ocr_reader.postprocess(fetch_map, with_score=True)
        return {"res": [line[0] for line in lines]}


ocr_service = OCRService(name="ocr")
ocr_service.load_model_config("ocr_rec_model")
ocr_service.prepare_server(workdir="workdir", port=9292)
ocr_service.init_det_debugger(det_model_config="ocr_det_model")
if sys.argv[1] == "gpu":
    ocr_service.run_debugger_service(gpu=True)
elif sys.argv[1] == "cpu":
    ocr_service.run_debugger_service()
ocr_service.run_web_service()
