"""Tests of pdserving.engine: model folders, the OpenVINO and Paddle engines, the worker pool,
which engine loads which model."""
