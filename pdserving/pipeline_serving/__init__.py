"""Paddle Serving's pipeline protocol (docs/design.md §6), as PaddleOCR's ``deploy/pdserving`` has
served it since 2021: ``web_service.py --config=config.yml``, HTTP on 9998 and gRPC
``PipelineService`` on 18091, in front of the same handlers as the other services.

``config`` reads config.yml, ``service`` answers requests on both fronts, ``client`` is the gRPC
client (Paddle Serving's ``PipelineClient``).
"""
