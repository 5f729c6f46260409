"""The OpenAPI document of each service (OCR, det, rec): valid OpenAPI 3.1, one entry per route,
and true: the request schema accepts exactly the bodies the service's parser accepts, and every
real answer, success or error, matches the schema documented for its status."""

import base64
import contextlib
import json
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from playwright.sync_api import expect
from starlette.routing import Route

from pdserving.errors import ServingError
from pdserving.services import DetHandler, OcrHandler, RecHandler, local_handler
from pdserving.web.app import PREDICT_PATH, create_app
from pdserving.web.schemas import parse_prediction
from tests.helpers.browser import browser_page
from tests.helpers.images import encode, text_image, text_line
from tests.helpers.requests import BAD_INPUTS, SETTINGS
from tests.helpers.servers import body, serve

KINDS = ("ocr", "det", "rec")
OUTPUTS = {"ocr": OcrHandler.outputs, "det": DetHandler.outputs, "rec": RecHandler.outputs}


@pytest.fixture(scope="module")
def services(model_root):
    """Each kind of service with its real models, in this process: kind -> (app, base URL)."""
    with contextlib.ExitStack() as stack:
        out = {}
        for kind in KINDS:
            handler = local_handler(kind, model_root)
            stack.callback(handler.close)
            app = create_app(handler, SETTINGS)
            out[kind] = (app, stack.enter_context(serve(app)))
        yield out


def schema_of(doc: dict, path: str, method: str, status: int) -> Draft202012Validator:
    """The validator for the JSON answer documented for ``status`` (a KeyError if none is)."""
    response = doc["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": doc["components"]})


def request_schema(doc: dict) -> Draft202012Validator:
    schema = doc["paths"][PREDICT_PATH]["post"]["requestBody"]["content"]["application/json"]
    return Draft202012Validator({**schema["schema"], "components": doc["components"]})


@pytest.mark.parametrize("kind", KINDS)
def test_the_document_is_valid_openapi_and_lists_every_route(services, kind):
    app, base = services[kind]
    doc = httpx.get(base + "/openapi.json").json()
    validate(doc)  # openapi-spec-validator: OpenAPI 3.1 and its JSON Schema dialect
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == f"pdserving {kind} service"
    routes = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route)
              for m in r.methods - {"HEAD"}}
    assert {(p, m) for p, ops in doc["paths"].items() for m in ops} == routes


def requests_for(kind: str) -> list[dict]:
    """Good requests of every form the kind answers: each fetch name, one and two images."""
    image = encode(text_line("HELLO 42") if kind == "rec" else text_image("HELLO 42"))
    names = list(OUTPUTS[kind])
    return ([body(image, fetch=[name]) for name in names] + [body(image, fetch=names)]
            + [body(image, image, fetch=names), body(image, fetch=[])])


@pytest.mark.parametrize("kind", KINDS)
def test_every_answer_matches_the_schema_of_its_status(services, kind):
    _, base = services[kind]
    doc = httpx.get(base + "/openapi.json").json()
    answers = [httpx.post(base + PREDICT_PATH, json=b, timeout=60) for b in requests_for(kind)]
    assert [r.status_code for r in answers] == [200] * len(answers)
    answers += [httpx.request(method, base + PREDICT_PATH, timeout=30, **kwargs)
                for _, (method, kwargs), *_ in BAD_INPUTS if method == "POST"]
    statuses = set()
    for r in answers:
        errors = list(schema_of(doc, PREDICT_PATH, "post", r.status_code).iter_errors(r.json()))
        assert not errors, (r.status_code, r.json(), errors[0].message)
        statuses.add(r.status_code)
    assert statuses == {200, 400, 413}
    for path in ("/health", "/ready"):
        r = httpx.get(base + path)
        assert schema_of(doc, path, "get", r.status_code).is_valid(r.json())


PROTOCOL_REQUESTS = {  # path -> good and bad bodies of the other protocols (docs/design.md §2.7)
    "/ocr": [{"file": "<image>", "fileType": 1}, {"file": "<image>", "visualize": False},
             {"file": "!!"}, {"fileType": 1}, {"file": "A" * (SETTINGS.max_body_bytes + 1)}],
    "/predict/ocr_system": [{"images": ["<image>"]}, {"images": []}, {"images": ["!!"]}],
    "/predict/ocr_det": [{"images": ["<image>"]}],
    "/predict/ocr_rec": [{"images": ["<image>"]}, {"nope": 1}],
}


def test_the_other_protocols_answers_match_their_documented_schemas(services):
    _, base = services["ocr"]
    doc = httpx.get(base + "/openapi.json").json()
    image = base64.b64encode(encode(text_image("HELLO 42"))).decode()
    statuses = set()
    for path, bodies in PROTOCOL_REQUESTS.items():
        for b in bodies:
            b = json.loads(json.dumps(b).replace("<image>", image))
            r = httpx.post(base + path, json=b, timeout=60)
            errors = list(schema_of(doc, path, "post", r.status_code).iter_errors(r.json()))
            assert not errors, (path, r.status_code, r.json(), errors[0].message)
            statuses.add((path, r.status_code))
    assert {s for _, s in statuses} == {200, 400, 413, 422}


def test_the_schema_refuses_what_the_service_would_not_answer(services):
    """The schema is strict: a result with an unknown key, or a box with 3 corners, fails."""
    doc = httpx.get(services["ocr"][1] + "/openapi.json").json()
    answer = schema_of(doc, PREDICT_PATH, "post", 200)
    box = [[0, 0], [9, 0], [9, 9], [0, 9]]
    assert answer.is_valid({"result": {"res": ["A"], "dt_boxes": [box], "rec_scores": [0.9]}})
    assert not answer.is_valid({"result": {"res": ["A"], "boxes": [box]}})
    assert not answer.is_valid({"result": {"dt_boxes": [box[:3]]}})
    assert not answer.is_valid({"result": "empty input"})


# JSON documents near the request's shape; no lone surrogates or infinities, which are not JSON
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8)
items = st.one_of(st.fixed_dictionaries({"image": st.one_of(text, json_values)}),
                  st.fixed_dictionaries({"image": text}, optional={"x": json_values}),
                  json_values)
fetches = st.one_of(st.sampled_from(["res", "dt_boxes", "nope", ""]),
                    st.lists(st.sampled_from(["res", "rec_scores", "boxes", ""]), max_size=3),
                    json_values)
bodies = st.one_of(
    st.fixed_dictionaries({}, optional={"feed": st.one_of(st.lists(items, max_size=6),
                                                          json_values),
                                        "fetch": fetches, "other": json_values}),
    json_values)


@pytest.fixture(scope="module")
def request_schemas(services):
    """kind -> the request schema of its document."""
    return {kind: request_schema(httpx.get(base + "/openapi.json").json())
            for kind, (_, base) in services.items()}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=bodies)
def test_the_request_schema_accepts_exactly_what_the_parser_accepts(request_schemas, kind, doc):
    try:
        parse_prediction(json.dumps(doc).encode(), kind, OUTPUTS[kind], SETTINGS.max_images)
        parsed = True
    except ServingError:
        parsed = False
    assert request_schemas[kind].is_valid(doc) == parsed, doc


def test_docs_and_swagger_ui_files_are_served_from_the_package(services):
    base = services["ocr"][1]
    page = httpx.get(base + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text and "://" not in page.text  # nothing from elsewhere
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = httpx.get(f"{base}/docs/static/{name}")
        assert r.status_code == 200 and len(r.content) > 10_000


@pytest.mark.browser
def test_docs_render_in_chromium_with_the_network_blocked(fast_ocr):
    """Swagger UI lists the prediction route and the request type, with every request it made
    going to the service itself (the helper aborts and records any other)."""
    with browser_page(fast_ocr.base + "/docs") as (page, log):
        operation = page.locator(".opblock-post", has_text=PREDICT_PATH)
        expect(operation.locator(".opblock-summary-method")).to_have_text("POST")
        expect(page.locator(".models")).to_contain_text("OcrRequest")
        expect(page.locator(".info .title")).to_contain_text("pdserving ocr service")
        log.assert_clean()
    paths = {urlsplit(r.split(" ", 1)[1]).path for r in log.requests}
    assert {"/docs", "/openapi.json", "/docs/static/swagger-ui-bundle.js"} <= paths
