"""Rec-only web service, rec in-process.

Usage: python rec_local_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.rec_local_server(sys.argv[1:]))
