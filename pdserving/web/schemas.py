"""The prediction request body (SPEC section 4), checked field by field with a message each.

``{"feed": [{"image": "<base64>"}, ...], "fetch": ["res"]}``: both keys are required, as in
the original. Image decoding is left to ``pdserving.imageio``; this module only checks shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pdserving.errors import BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class Prediction:
    images: list[str]  # base64 strings, in feed order
    fetch: list[str]   # known output names, without repeats, never empty


def parse_prediction(body: bytes, outputs: tuple[str, ...], max_images: int) -> Prediction:
    """Check a request body; ``outputs`` are the handler's fetch names, the first the default.

    Raises BadRequest naming the first problem found, PayloadTooLarge for more than
    ``max_images`` images.
    """
    doc = load_request(body, outputs[0])
    return Prediction(_images(doc["feed"], max_images), _fetch(doc["fetch"], outputs))


def load_request(body: bytes, example_fetch: str = "res") -> dict:
    """The body as a JSON object with ``feed`` and ``fetch`` keys, their values unchecked."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest('body must be a JSON object: {"feed": [...], "fetch": [...]}')
    missing = [key for key in ("feed", "fetch") if key not in doc]
    if missing:
        raise BadRequest(f"missing {' and '.join(repr(k) for k in missing)}: expected "
                         '{"feed": [{"image": "<base64>"}], "fetch": ["' + example_fetch + '"]}')
    return doc


def _images(feed: object, max_images: int) -> list[str]:
    if not isinstance(feed, list) or not feed:
        raise BadRequest('feed must be a non-empty list of {"image": "<base64>"} objects')
    if len(feed) > max_images:
        raise PayloadTooLarge(f"feed has {len(feed)} images; at most {max_images} per request")
    images = []
    for i, item in enumerate(feed):
        if not isinstance(item, dict) or "image" not in item:
            raise BadRequest(f'feed[{i}] must be an object with an "image" key')
        if not isinstance(item["image"], str):
            raise BadRequest(f"feed[{i}].image must be a base64 string")
        images.append(item["image"])
    return images


def _fetch(fetch: object, outputs: tuple[str, ...]) -> list[str]:
    names = [fetch] if isinstance(fetch, str) else fetch
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("fetch must be a string or a list of strings")
    unknown = [n for n in names if n not in outputs]
    if unknown:
        raise BadRequest(f"unknown fetch name {unknown[0]!r}; this service offers "
                         + ", ".join(outputs))
    return list(dict.fromkeys(names)) or [outputs[0]]
