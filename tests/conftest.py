"""Shared fixtures: the bundled models, materialised once per test session."""

from pathlib import Path

import pytest

from pdserving import package


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    """A folder holding ocr_det_model/, ocr_rec_model/, ocr_cls_model/ and their client folders."""
    root = tmp_path_factory.mktemp("models")
    for name in ("ocr_det", "ocr_rec", "ocr_cls"):
        package.get_model(name, root)
    return root
