"""``GET /``: a page to try a service in a browser, drop an image and see what it reads.

One self-contained file (``static/page.html``: HTML, CSS and plain JavaScript, nothing fetched
from elsewhere). The service fills in what the page needs to know: its kind, its endpoint and
the outputs to ask for.
"""

from __future__ import annotations

import json
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

_MARK = "__PDSERVING_CONFIG__"


def page_route(service: str, path: str, fetch: tuple[str, ...], api_key: bool = False) -> Route:
    """The route serving the page for ``service`` ("ocr", "det" or "rec") posting to ``path``;
    ``api_key``: the service wants a key, which the page asks for (and never holds itself)."""
    config = json.dumps({"service": service, "path": path, "fetch": list(fetch),
                         "apiKey": api_key})
    template = (resources.files(__package__) / "static" / "page.html").read_text("utf-8")
    html = template.replace(_MARK, config.replace("</", "<\\/"))

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(html)

    return Route("/", page, methods=["GET"])
