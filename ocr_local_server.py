"""Fast OCR service: det and rec in-process, HTTP on 9292.

Usage: python ocr_local_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.ocr_local_server(sys.argv[1:]))
