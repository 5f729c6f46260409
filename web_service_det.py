"""PaddleOCR's pipeline service, det-only: HTTP on 9998, gRPC PipelineService on 18091.

Usage: python web_service_det.py --config=config.yml [--host 0.0.0.0] [--engine openvino|paddle]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.pipeline_service("det", sys.argv[1:]))
