"""Standard OCR service (docs/design.md §1.1): det over RPC on 9293, rec on its own model
server, HTTP on 9292.

Usage: python ocr_web_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.ocr_web_server(sys.argv[1:]))
