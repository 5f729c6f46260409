"""The bodies of the HTTP protocol (docs/design.md §2) as types: pydantic checks the prediction
request against its type, and the OpenAPI document (``pdserving.web.openapi``) is generated from
these types and the services' result types.

``{"feed": [{"image": "<base64>"}, ...], "fetch": ["res"]}``: both keys are required, as in
the original. Image decoding is left to ``pdserving.imageio``; this module only checks shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, create_model
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from pdserving.errors import BadRequest, PayloadTooLarge


class FeedItem(BaseModel):
    image: str = Field(description="The image file (JPEG, PNG, BMP, TIFF, WebP, GIF or PPM) "
                                   "in standard base64; a data: URL prefix is allowed.")


class ErrorBody(TypedDict):
    """Every error: the message twice, as the original's clients read either key."""

    result: str
    err_no: int
    err_msg: str


class Status(TypedDict):
    """``/health`` (alive) and ``/ready`` (ready)."""

    status: str


@dataclass(frozen=True)
class Prediction:
    images: list[str]  # base64 strings, in feed order
    fetch: list[str]   # known output names, without repeats, never empty


@cache
def request_type(service: str, outputs: tuple[str, ...], max_images: int) -> type[BaseModel]:
    """The request body of a service answering ``outputs`` (the first the default) for at
    most ``max_images`` images, e.g. ``OcrRequest``."""
    name = Literal[outputs]  # type: ignore[valid-type]
    fetch = Annotated[list[name],
                      BeforeValidator(_as_list, json_schema_input_type=name | list[name]),
                      Field(description=f"The outputs to answer (a name or a list); [] means "
                                        f"[{outputs[0]!r}]. Unknown names are refused.")]
    feed = Annotated[list[FeedItem], Field(min_length=1, max_length=max_images,
                                           description="The images, answered in this order.")]
    return create_model(f"{service.capitalize()}Request", feed=(feed, ...), fetch=(fetch, ...))


def parse_prediction(body: bytes, service: str, outputs: tuple[str, ...],
                     max_images: int) -> Prediction:
    """Check a request body against ``request_type(service, outputs, max_images)``.

    Raises BadRequest naming the first problem found, PayloadTooLarge for more than
    ``max_images`` images.
    """
    try:
        doc = request_type(service, outputs, max_images).model_validate_json(body)
    except ValidationError as e:
        raise _refusal(e.errors(include_url=False), outputs) from None
    fetch = list(dict.fromkeys(doc.fetch)) or [outputs[0]]
    return Prediction([item.image for item in doc.feed], fetch)


def load_request(body: bytes, example_fetch: str = "res") -> dict:
    """The body as a JSON object with ``feed`` and ``fetch`` keys, their values unchecked
    (for fronts whose feed is not images, e.g. the 2020 ``WebService``)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"body must be a JSON object: {_example(example_fetch)}")
    missing = [key for key in ("feed", "fetch") if key not in doc]
    if missing:
        raise BadRequest(_missing(missing, example_fetch))
    return doc


def field_refusal(error: ValidationError, wrong_shape: str) -> BadRequest:
    """pydantic's first error as one message naming the field, e.g. ``textDetThresh: Input
    should be less than or equal to 1``; ``wrong_shape`` for a body that is not an object (the
    other protocols' requests: PaddleX's, PaddleHub's)."""
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return BadRequest("body is not valid JSON")
    if not first["loc"]:
        return BadRequest(wrong_shape)
    return BadRequest(f"{'.'.join(map(str, first['loc']))}: {first['msg']}")


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _example(fetch: str) -> str:
    return '{"feed": [{"image": "<base64>"}], "fetch": ["' + fetch + '"]}'


def _missing(keys: list[str], example_fetch: str) -> str:
    return (f"missing {' and '.join(repr(k) for k in keys)}: expected "
            + _example(example_fetch))


def _refusal(errors: list[dict], outputs: tuple[str, ...]) -> BadRequest | PayloadTooLarge:
    """pydantic's first error as one message naming the place, e.g. ``feed[1].image``."""
    first = errors[0]
    kind, loc = first["type"], first["loc"]
    if kind == "json_invalid":
        return BadRequest("body is not valid JSON")
    if not loc:
        return BadRequest(f"body must be a JSON object: {_example(outputs[0])}")
    if kind == "missing" and len(loc) == 1:
        keys = [e["loc"][0] for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
        return BadRequest(_missing(keys, outputs[0]))
    if kind == "too_long" and loc == ("feed",):
        ctx = first["ctx"]
        return PayloadTooLarge(f"feed has {ctx['actual_length']} images; at most "
                               f"{ctx['max_length']} per request")
    if kind == "literal_error" and isinstance(first["input"], str):
        return BadRequest(f"unknown fetch name {first['input']!r}; this service offers "
                          + ", ".join(outputs))
    if kind == "missing":  # feed[i] without "image": the item is what is wrong
        kind, loc = "model_type", loc[:-1]
    if kind == "literal_error":
        kind, loc = "list_type", loc[:1]
    where = loc[0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
    return BadRequest(f"{where} {_MESSAGES.get((loc[0], kind), first['msg'])}")


_FEED = 'must be a non-empty list of {"image": "<base64>"} objects'
_MESSAGES = {  # (top-level key, pydantic's error type) -> our words
    ("feed", "list_type"): _FEED,
    ("feed", "too_short"): _FEED,
    ("feed", "model_type"): 'must be an object with an "image" key',
    ("feed", "string_type"): "must be a base64 string",
    ("fetch", "list_type"): "must be a string or a list of strings",
}
