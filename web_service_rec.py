"""PaddleOCR's pipeline service, rec-only: HTTP on 9998, gRPC PipelineService on 18091.

Usage: python web_service_rec.py --config=config.yml [--host 0.0.0.0] [--engine openvino|paddle]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.pipeline_service("rec", sys.argv[1:]))
