"""The protocols an OCR service speaks beside its own ``/ocr/prediction``: PaddleX's ``POST /ocr``
(``pdserving.web.paddlex``) and PaddleHub Serving's ``/predict/<module>``
(``pdserving.web.hub``). Each is a ``Front`` on the handler's one pipeline, so all share the
service's models, limits, admission and metrics (docs/design.md §2.7-2.8)."""

from __future__ import annotations

from functools import partial

from pdserving.web import hub, paddlex
from pdserving.web.app import Front, WebSettings


def fronts(handler, settings: WebSettings) -> list[Front]:
    """The fronts of ``handler``'s kind ("ocr", "det", "rec"); none for a handler without an
    ``OcrPipeline``."""
    pipeline = getattr(handler, "pipeline", None)
    if pipeline is None:
        return []
    out = []
    if handler.name == "ocr":
        out.append(Front(paddlex.PATH, partial(paddlex.answer, pipeline, settings),
                         paddlex.error_body))
    out.extend(Front(path, partial(answer, pipeline, settings), hub.error_body)
               for path, answer in hub.modules(handler.name).items())
    return out
