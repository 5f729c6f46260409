"""Where things are: the repository the tests run from, and its sample images."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
