"""Tests of pdserving.ops: the OCR steps as numpy functions."""
