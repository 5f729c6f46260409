"""Paddle Serving's client package name, for 2020 scripts: ``pdserving.client``."""

from pdserving.client import Client

__all__ = ["Client"]
