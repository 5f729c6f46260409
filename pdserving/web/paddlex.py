"""PaddleOCR 3.x's serving protocol (PaddleX basic serving, OCR pipeline): ``POST /ocr`` with an
image or a PDF, answered page by page (docs/design.md §2.7).

The request and the answer have PaddleX's field names and types; the work is the kit's own
pipeline, with the request's det thresholds and score threshold for this call only. Where the
kit differs: a base64 file without ``fileType`` is sniffed (PaddleX refuses it), a PDF over
``max_pdf_pages`` is refused (PaddleX reads its first 10 pages), URLs are fetched only from
allowed hosts, and requests run side by side under the service's limits (PaddleX runs one at
a time).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace
from typing import Annotated, Any, Literal, Mapping

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from pdserving import pdf
from pdserving.errors import BadRequest, PayloadTooLarge, ServingError, Unprocessable
from pdserving.imageio import b64decode, decode_image
from pdserving.ops import draw
from pdserving.pipeline import OcrPipeline, Reading
from pdserving.services import boxes_json
from pdserving.web.download import download, is_url
from pdserving.web.schemas import field_refusal

PATH = "/ocr"
JPEG_QUALITY = 90

_Unit = Annotated[float, Field(ge=0, le=1)]


class PaddlexRequest(BaseModel):
    """PaddleX's OCR request; a field left out (or null) takes the service's setting."""

    model_config = ConfigDict(extra="ignore")

    file: str = Field(description="The file in standard base64, or a URL (only from the hosts "
                                  "the server allows: --allow_url_hosts).")
    fileType: Literal[0, 1] | None = Field(
        None, description="0: PDF, 1: image; null: told from the file's first bytes.")
    useDocOrientationClassify: Literal[False] | None = Field(
        None, description="Not offered (no such model): only false or null.")
    useDocUnwarping: Literal[False] | None = Field(
        None, description="Not offered (no such model): only false or null.")
    useTextlineOrientation: bool | None = Field(
        None, description="The 180-degree line classifier (a service started with --use_cls).")
    textDetLimitSideLen: int | None = Field(None, ge=16, le=4000)
    textDetLimitType: Literal["min", "max"] | None = None
    textDetThresh: _Unit | None = None
    textDetBoxThresh: _Unit | None = None
    textDetUnclipRatio: float | None = Field(None, gt=0, le=10)
    textRecScoreThresh: _Unit | None = None
    returnWordBox: Literal[False] | None = Field(
        None, description="Word boxes are not offered: only false or null.")
    visualize: bool | None = Field(None, description="Add ocrImage and inputImage (JPEG, "
                                                     "base64); null: the server's default.")
    logId: str | None = Field(None, max_length=200, description="Echoed in the answer.")


class ModelSettings(TypedDict):
    use_doc_preprocessor: bool
    use_textline_orientation: bool


class TextDetParams(TypedDict):
    limit_side_len: int
    limit_type: str
    thresh: float
    max_side_limit: int
    box_thresh: float
    unclip_ratio: float


_Poly = list[list[int]]


class PrunedResult(TypedDict):
    """One page's OCR, as PaddleX's pipeline reports it: every det box (``dt_polys``), and the
    lines scoring at least ``text_rec_score_thresh`` (``rec_*``)."""

    model_settings: ModelSettings
    dt_polys: list[_Poly]
    text_det_params: TextDetParams
    text_type: str
    textline_orientation_angles: list[int]
    text_rec_score_thresh: float
    return_word_box: bool
    rec_texts: list[str]
    rec_scores: list[float]
    rec_polys: list[_Poly]
    rec_boxes: list[list[int]]


class PaddlexPage(TypedDict, total=False):
    prunedResult: PrunedResult
    ocrImage: str
    inputImage: str


class PaddlexResult(TypedDict):
    ocrResults: list[PaddlexPage]
    dataInfo: dict[str, Any]


class PaddlexAnswer(TypedDict):
    logId: str
    result: PaddlexResult
    errorCode: int
    errorMsg: str


class PaddlexError(TypedDict):
    logId: str
    errorCode: int
    errorMsg: str


def error_body(err_no: int, message: str) -> dict:
    return {"logId": str(uuid.uuid4()), "errorCode": err_no, "errorMsg": message}


def answer(pipeline: OcrPipeline, settings, body: bytes, path_params: Mapping[str, str]) -> dict:
    """The blocking part of ``POST /ocr`` (``settings``: ``WebSettings``). Every error
    carries the request's logId; bad input of any kind is 422, as in PaddleX. A PDF whose
    request has timed out (its client already has its 503) stops at the next page."""
    deadline = time.monotonic() + settings.request_timeout
    request = None
    try:
        request = _parse(body)
        options = _options(request, pipeline)
        visualize = settings.visualize if request.visualize is None else request.visualize
        pages, info = _pages(request, settings)
        results = []
        for img in pages:
            if time.monotonic() > deadline:
                raise settings.timed_out()
            results.append(_page(pipeline.read(img, **options), img, visualize))
    except (BadRequest, PayloadTooLarge) as e:
        error: ServingError = Unprocessable(e.message)
    except ServingError as e:
        error = e
    else:
        return {"logId": request.logId or str(uuid.uuid4()),
                "result": {"ocrResults": results, "dataInfo": info},
                "errorCode": 0, "errorMsg": "Success"}
    error.fields = {"logId": request.logId if request and request.logId else _log_id(body)}
    raise error from None


def _log_id(body: bytes) -> str:
    """The logId of a request that did not parse, if it has one (PaddleX echoes it too); else
    a new one."""
    try:
        log_id = json.loads(body).get("logId")
    except (ValueError, RecursionError, AttributeError):
        log_id = None
    return log_id if isinstance(log_id, str) and log_id else str(uuid.uuid4())


def _parse(body: bytes) -> PaddlexRequest:
    try:
        return PaddlexRequest.model_validate_json(body)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        if field in _NOT_OFFERED and first["type"] == "literal_error":
            raise BadRequest(f"{field}: {_NOT_OFFERED[field]}") from None
        raise field_refusal(e, 'body must be a JSON object: {"file": "<base64>", '
                               '"fileType": 1}') from None


_NOT_OFFERED = {
    "useDocOrientationClassify": "this service has no document orientation model; send "
                                 "false or leave it out",
    "useDocUnwarping": "this service has no document unwarping model; send false or leave "
                       "it out",
    "returnWordBox": "word boxes are not offered; send false or leave it out",
}


def _options(request: PaddlexRequest, pipeline: OcrPipeline) -> dict:
    """The pipeline's settings for this request (``OcrPipeline.read``'s arguments)."""
    has_cls = pipeline.options.use_cls
    if request.useTextlineOrientation and not has_cls:
        raise BadRequest("useTextlineOrientation: this service runs without the text line "
                         "orientation model; start it with --use_cls")
    changes = {key: value for key, value in (
        ("limit_side_len", request.textDetLimitSideLen),
        ("limit_type", request.textDetLimitType),
        ("thresh", request.textDetThresh),
        ("box_thresh", request.textDetBoxThresh),
        ("unclip_ratio", request.textDetUnclipRatio)) if value is not None}
    return {"det": replace(pipeline.options.det, **changes),
            "use_cls": has_cls if request.useTextlineOrientation is None
            else request.useTextlineOrientation,
            "drop_score": request.textRecScoreThresh}


def _pages(request: PaddlexRequest, settings):
    """The request's images (one, or a PDF's pages, rendered one at a time) and dataInfo."""
    max_bytes = settings.max_body_bytes
    if is_url(request.file):
        data = download(request.file, settings.url_hosts, max_bytes, settings.url_timeout)
    else:
        data = b64decode(request.file)
    is_pdf = pdf.is_pdf(data) if request.fileType is None else request.fileType == 0
    if is_pdf:
        pages = pdf.PdfPages(data, settings.max_pdf_pages, settings.max_image_pixels)
        return pages, {"numPages": len(pages),
                       "pages": [{"width": w, "height": h} for w, h in pages.sizes],
                       "type": "pdf"}
    if request.fileType == 1 and pdf.is_pdf(data):
        raise BadRequest("file is a PDF, and fileType says 1 (image): send fileType 0")
    img = decode_image(data, settings.max_image_pixels)
    return [img], {"width": img.shape[1], "height": img.shape[0], "type": "image"}


def _page(reading: Reading, img: np.ndarray, visualize: bool) -> PaddlexPage:
    d = reading.det
    lines = reading.lines
    rec_polys = boxes_json([line.box for line in lines])
    pruned: PrunedResult = {
        "model_settings": {"use_doc_preprocessor": False,
                           "use_textline_orientation": reading.use_cls},
        "dt_polys": boxes_json(reading.boxes),
        "text_det_params": {"limit_side_len": int(d.limit_side_len),
                            "limit_type": d.limit_type, "thresh": float(d.thresh),
                            "max_side_limit": int(d.max_side_limit),
                            "box_thresh": float(d.box_thresh),
                            "unclip_ratio": float(d.unclip_ratio)},
        "text_type": "general",
        "textline_orientation_angles": [r.angle for r in reading.reads],
        "text_rec_score_thresh": float(reading.drop_score),
        "return_word_box": False,
        "rec_texts": [line.text for line in lines],
        "rec_scores": [float(line.score) for line in lines],
        "rec_polys": rec_polys,
        "rec_boxes": [[min(x for x, _ in p), min(y for _, y in p), max(x for x, _ in p),
                       max(y for _, y in p)] for p in rec_polys],
    }
    page: PaddlexPage = {"prunedResult": pruned}
    if visualize:
        picture = draw.draw_ocr(img, np.array([line.box for line in lines]),
                                [line.text for line in lines])
        page["ocrImage"] = _jpeg(picture)
        page["inputImage"] = _jpeg(img)
    return page


def _jpeg(img: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return base64.b64encode(data.tobytes()).decode("ascii")
