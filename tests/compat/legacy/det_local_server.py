# Det-only service in the 2020 form: the det model in this process (run_debugger_service), the
# request's sizes kept on self between preprocess and postprocess.
import base64
import sys

import cv2
import numpy as np
from paddle_serving_app.reader import (DBPostProcess, Div, FilterBoxes, Normalize,
                                       ResizeByFactor, Sequential, Transpose)

if sys.argv[1] == "gpu":
    from paddle_serving_server_gpu.web_service import WebService
elif sys.argv[1] == "cpu":
    from paddle_serving_server.web_service import WebService


class OCRService(WebService):
    def init_det(self):
        self.det_preprocess = Sequential([
            ResizeByFactor(32, 960), Div(255),
            Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), Transpose((2, 0, 1))])
        self.filter_func = FilterBoxes(10, 10)
        self.post_func = DBPostProcess({"thresh": 0.3, "box_thresh": 0.5, "max_candidates": 1000,
                                        "unclip_ratio": 1.5, "min_size": 3})

    def preprocess(self, feed=[], fetch=[]):
        raw = base64.b64decode(feed[0]["image"].encode("utf8"))
        im = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        self.ori_h, self.ori_w, _ = im.shape
        det_img = self.det_preprocess(im)
        _, self.new_h, self.new_w = det_img.shape
        return {"image": det_img[np.newaxis, :].copy()}, ["concat_1.tmp_0"]

    def postprocess(self, feed={}, fetch=[], fetch_map=None):
        ratios = [float(self.new_h) / self.ori_h, float(self.new_w) / self.ori_w]
        boxes = self.post_func(fetch_map["concat_1.tmp_0"], [ratios])
        boxes = self.filter_func(boxes[0], [self.ori_h, self.ori_w])
        return {"dt_boxes": boxes.tolist()}


ocr_service = OCRService(name="ocr")
ocr_service.load_model_config("ocr_det_model")
ocr_service.init_det()
if sys.argv[1] == "gpu":
    ocr_service.set_gpus("0")
    ocr_service.prepare_server(workdir="workdir", port=9292, device="gpu", gpuid=0)
    ocr_service.run_debugger_service(gpu=True)
elif sys.argv[1] == "cpu":
    ocr_service.prepare_server(workdir="workdir", port=9292)
    ocr_service.run_debugger_service()
ocr_service.run_web_service()
