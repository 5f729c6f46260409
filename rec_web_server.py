"""Rec-only web service; rec runs on its own model server.

Usage: python rec_web_server.py cpu|gpu [--port 9292] [--help]
"""
import sys

from pdserving import cli

if __name__ == "__main__":
    sys.exit(cli.rec_web_server(sys.argv[1:]))
