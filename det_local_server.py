"""Det-only web service, det in-process.

Usage: python det_local_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.det_local_server(sys.argv[1:]))
