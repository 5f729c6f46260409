"""Det-only web service; det runs on its own model server.

Usage: python det_web_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.det_web_server(sys.argv[1:]))
