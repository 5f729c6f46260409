"""Send every image of a folder to the pipeline service over HTTP (9998) and print its lines.

Usage: python pipeline_http_client.py [--image_dir samples/]
"""
import sys

from pdserving import clients

if __name__ == "__main__":
    sys.exit(clients.pipeline_http_client(sys.argv[1:]))
