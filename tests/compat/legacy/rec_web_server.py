# Rec-only service in the 2020 form, which imported the GPU package whatever the argument said:
# on a Paddle build without CUDA it must stop with the one-line GPU error.
import base64

import cv2
import numpy as np
from paddle_serving_app.reader import OCRReader
from paddle_serving_server_gpu.web_service import WebService


class OCRService(WebService):
    def init_rec(self):
        self.ocr_reader = OCRReader()

    def preprocess(self, feed=[], fetch=[]):
        images = []
        for item in feed:
            raw = base64.b64decode(item["image"].encode("utf8"))
            images.append(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR))
        max_wh_ratio = max(im.shape[1] * 1.0 / im.shape[0] for im in images)
        feed_list = [{"image": self.ocr_reader.resize_norm_img(im, max_wh_ratio)}
                     for im in images]
        return feed_list, ["ctc_greedy_decoder_0.tmp_0", "softmax_0.tmp_0"]

    def postprocess(self, feed={}, fetch=[], fetch_map=None):
        lines = self.ocr_reader.postprocess(fetch_map, with_score=True)
        return {"res": [line[0] for line in lines]}


ocr_service = OCRService(name="ocr")
ocr_service.load_model_config("ocr_rec_model")
ocr_service.set_gpus("0")
ocr_service.init_rec()
ocr_service.prepare_server(workdir="workdir", port=9292, device="gpu", gpuid=0)
ocr_service.run_rpc_service()
ocr_service.run_web_service()
