"""What the tests share, one module per kind; import as ``from tests.helpers.<module> import ...``.

- ``paths``: ``ROOT`` (the repository) and ``SAMPLES`` (its sample images).
- ``images``: the one text-image drawer, encoded files, base64, a crafted PNG header, det input.
- ``models``: Paddle models made by the tests (a PIR program, one OpenVINO cannot convert).
- ``servers``: real servers on 127.0.0.1 (the top-level scripts, an app in a thread, a web
  service in a child process) and the requests they are sent.

Session fixtures built on these (the bundled models, the running services) are in
``tests/conftest.py``.
"""
