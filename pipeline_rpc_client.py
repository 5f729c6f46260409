"""Send every image of a folder to the pipeline service over gRPC (18091) and print its lines.

Usage: python pipeline_rpc_client.py [--image_dir samples/]
"""
import sys

from pdserving import clients

if __name__ == "__main__":
    sys.exit(clients.pipeline_rpc_client(sys.argv[1:]))
