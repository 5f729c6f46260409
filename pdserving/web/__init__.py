"""The HTTP layer: ``app`` (routes and errors), ``schemas`` (request checks), ``limits``
(admission control) and ``runner`` (uvicorn)."""
