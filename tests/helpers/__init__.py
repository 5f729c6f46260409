"""What the tests share, one module per kind; import as ``from tests.helpers.<module> import ...``.

- ``paths``: ``ROOT`` (the repository) and ``SAMPLES`` (its sample images).
- ``images``: the one text-image drawer, encoded files, base64, a crafted PNG header, det input.
- ``models``: Paddle models made by the tests (a PIR program, one OpenVINO cannot convert).
- ``servers``: real servers on 127.0.0.1 (the top-level scripts, an app in a thread, a web
  service in a child process) and the requests they are sent.
- ``requests``: the web tests' limits, a good request, every bad input with its status and
  message, and the checks of the JSON error body (the web, OpenAPI and Ray ingress tests).
- ``browser``: headless Chromium through Playwright, for the pages the services serve.
- ``netns``: a command in a network namespace of its own (the 2020 scripts' fixed ports).

Session fixtures built on these (the bundled models, the running services) are in
``tests/conftest.py``.
"""
