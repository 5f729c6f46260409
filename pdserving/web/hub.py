"""PaddleHub Serving's protocol, PaddleOCR's other deployment (``deploy/hubserving``):
``POST /predict/ocr_system`` (and ``ocr_det``, ``ocr_rec``) with ``{"images": [base64, ...]}``,
answered in PaddleHub's envelope ``{"msg", "results", "status"}`` (docs/design.md §2.8).

Where the kit differs: an error has a proper HTTP status (PaddleHub answers 200 with status
"101"), an image that cannot be decoded is an error (PaddleHub gives it an empty result), and
``ocr_system`` drops lines by the service's ``--drop_score`` (hubserving's was 0.5), so that its
lines are those of ``/ocr/prediction``.
"""

from __future__ import annotations

from typing import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from pdserving.errors import BadRequest, PayloadTooLarge
from pdserving.imageio import decode_base64_images
from pdserving.pipeline import OcrPipeline
from pdserving.services import Box, boxes_json
from pdserving.web.schemas import field_refusal

SUCCESS = "000"
FAILED = "101"  # PaddleHub's status for anything that went wrong inside the module


class HubRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    images: list[str] = Field(min_length=1, description="The image files, in standard base64.")
    paths: list[str] | None = Field(None, description="Not offered: files on the server.")


class SystemLine(TypedDict):
    text: str
    confidence: float
    text_region: Box


class DetLine(TypedDict):
    text_region: Box


class RecLine(TypedDict):
    text: str
    confidence: float


class HubError(TypedDict):
    msg: str
    results: str  # "", as PaddleHub's
    status: str


def error_body(err_no: int, message: str) -> dict:
    return {"msg": message, "results": "", "status": FAILED}


def _images(body: bytes, settings) -> list:
    try:
        request = HubRequest.model_validate_json(body)
    except ValidationError as e:
        shape = 'body must be {"images": ["<base64>", ...]}'
        if e.errors(include_url=False)[0]["type"] == "missing":
            raise BadRequest(shape) from None
        raise field_refusal(e, shape) from None
    if request.paths:
        raise BadRequest("paths (files on the server) are not read: send images as base64")
    if len(request.images) > settings.max_images:
        raise PayloadTooLarge(f"images has {len(request.images)} entries; at most "
                              f"{settings.max_images} per request")
    return decode_base64_images(request.images, settings.max_image_pixels, "images[{i}]")


def _ok(results: list) -> dict:
    return {"msg": "", "results": results, "status": SUCCESS}


def ocr_system(pipeline: OcrPipeline, settings, body: bytes, _: Mapping[str, str]) -> dict:
    per_image = []
    for img in _images(body, settings):
        lines = pipeline(img)
        per_image.append([{"text": line.text, "confidence": float(line.score),
                           "text_region": region}
                          for line, region in zip(lines, boxes_json([ln.box for ln in lines]))])
    return _ok(per_image)


def ocr_det(pipeline: OcrPipeline, settings, body: bytes, _: Mapping[str, str]) -> dict:
    return _ok([[{"text_region": region} for region in boxes_json(pipeline.detect(img))]
                for img in _images(body, settings)])


def ocr_rec(pipeline: OcrPipeline, settings, body: bytes, _: Mapping[str, str]) -> dict:
    """Each image is one text line; all of them come back as one list, as hubserving's."""
    reads = pipeline.recognize(_images(body, settings))
    return _ok([[{"text": r.text, "confidence": float(r.score)} for r in reads]])


_MODULES: dict[str, Callable] = {"ocr_system": ocr_system, "ocr_det": ocr_det,
                                 "ocr_rec": ocr_rec}
RESULTS = {"ocr_system": SystemLine, "ocr_det": DetLine, "ocr_rec": RecLine}
_KIND_MODULES = {"ocr": ("ocr_system", "ocr_det", "ocr_rec"), "det": ("ocr_det",),
                 "rec": ("ocr_rec",)}


def modules(kind: str) -> dict[str, Callable]:
    """The routes a service of ``kind`` answers, and each one's blocking answer."""
    return {f"/predict/{name}": _MODULES[name] for name in _KIND_MODULES.get(kind, ())}
