"""Request body checks without a server: what passes, and the message of each refusal."""

import json

import pytest

from pdserving.errors import BadRequest, PayloadTooLarge
from pdserving.web.schemas import parse_prediction

OUTPUTS = ("res", "dt_boxes", "rec_scores")


def parse(doc, max_images: int = 3):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_prediction(raw, "ocr", OUTPUTS, max_images)


def test_a_valid_request():
    p = parse({"feed": [{"image": "aa"}, {"image": "bb", "extra": 1}],
               "fetch": ["rec_scores", "res"], "ignored": True})
    assert p.images == ["aa", "bb"] and p.fetch == ["rec_scores", "res"]


@pytest.mark.parametrize("fetch, expected", [
    ("dt_boxes", ["dt_boxes"]),
    ([], ["res"]),
    (["res", "res", "dt_boxes"], ["res", "dt_boxes"]),
])
def test_fetch_forms(fetch, expected):
    assert parse({"feed": [{"image": "aa"}], "fetch": fetch}).fetch == expected


@pytest.mark.parametrize("doc, message", [
    (b"", "body is not valid JSON"),
    (b"\x80", "body is not valid JSON"),
    (b"[" * 50_000 + b"]" * 50_000, "body is not valid JSON"),
    (b"1" * 5000, "body is not valid JSON"),  # a number beyond the parser's range
    ([], "body must be a JSON object"),
    ("feed", "body must be a JSON object"),
    ({}, "missing 'feed' and 'fetch'"),
    ({"fetch": []}, "missing 'feed'"),
    ({"feed": [{"image": "aa"}]}, "missing 'fetch'"),
    ({"feed": None, "fetch": []}, "feed must be a non-empty list"),
    ({"feed": "aa", "fetch": []}, "feed must be a non-empty list"),
    ({"feed": [], "fetch": []}, "feed must be a non-empty list"),
    ({"feed": [{"image": "aa"}, {}], "fetch": []}, 'feed[1] must be an object with an "image" key'),
    ({"feed": [["aa"]], "fetch": []}, 'feed[0] must be an object with an "image" key'),
    ({"feed": [{"image": None}], "fetch": []}, "feed[0].image must be a base64 string"),
    ({"feed": [{"image": ["aa"]}], "fetch": []}, "feed[0].image must be a base64 string"),
    ({"feed": [{"image": "aa"}], "fetch": None}, "fetch must be a string or a list of strings"),
    ({"feed": [{"image": "aa"}], "fetch": ["res", 2]}, "fetch must be a string or a list"),
    ({"feed": [{"image": "aa"}], "fetch": "text"},
     "unknown fetch name 'text'; this service offers res, dt_boxes, rec_scores"),
    ({"feed": [{"image": "aa"}], "fetch": ["res", ""]}, "unknown fetch name ''"),
])
def test_refusals_name_the_problem(doc, message):
    with pytest.raises(BadRequest) as refused:
        parse(doc)
    assert refused.value.message.startswith(message)


def test_too_many_images_is_payload_too_large():
    with pytest.raises(PayloadTooLarge, match="^feed has 4 images; at most 3 per request$"):
        parse({"feed": [{"image": "aa"}] * 4, "fetch": []})
