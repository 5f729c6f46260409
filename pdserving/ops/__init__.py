"""The OCR steps of docs/design.md §3 as plain functions on numpy arrays.

numpy, OpenCV, pyclipper and shapely only: no paddle and no I/O, so the same steps serve the
in-process pipeline, the RPC pipeline and the tests. Import the step modules directly
(``from pdserving.ops import resize, db, crop, ctc, cls``).
"""
