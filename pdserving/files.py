"""Files written only when their content changes.

A running model server may be reading a model folder while ``--get_model`` runs again, and the
tarball of a folder (``pdserving.package.write_archive``) records its files' times: an unchanged
file keeps its inode and time, so a re-run changes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` already holds exactly it."""
    if not (path.is_file() and path.read_bytes() == data):
        path.write_bytes(data)


def copy_if_changed(src: Path, dst: Path) -> None:
    """Copy unless ``dst`` already is this file (same size and time): re-runs stay cheap."""
    if dst.exists():
        if dst.samefile(src):
            return
        s, d = src.stat(), dst.stat()
        if s.st_size == d.st_size and s.st_mtime_ns == d.st_mtime_ns:
            return
    shutil.copy2(src, dst)
