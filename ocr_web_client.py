"""Post every image of a folder (default: samples/) to the OCR service and print the JSON.

Usage: python ocr_web_client.py [FOLDER] [--url URL]
"""
import sys

from pdserving import clients

if __name__ == "__main__":
    sys.exit(clients.ocr_web_client(sys.argv[1:]))
