"""Take docs/page.png: the page ``GET /`` serves, with a sample image read by the fast service.

Starts ``ocr_local_server.py cpu`` on a free 127.0.0.1 port (models from --model_root, the
repository by default), opens its page in Chromium through Playwright (as tests/web/test_page.py
does), uploads the sample, waits for its lines and saves the screenshot (PNG, kept under 300 KB).

    .venv/bin/python tools/page_screenshot.py [--sample samples/sign_shop.jpg] [--out docs/page.png]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The service and Chromium as the browser tests start them.
from tests.helpers.browser import browser_page  # noqa: E402
from tests.helpers.servers import script, started  # noqa: E402

MAX_BYTES = 300_000


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sample", type=Path, default=ROOT / "samples" / "sign_shop.jpg")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png")
    p.add_argument("--model_root", type=Path, default=ROOT)
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--height", type=int, default=620)
    args = p.parse_args(argv)
    if shutil.which("chromium") is None:
        print("error: chromium not found: apt-get install chromium", file=sys.stderr)
        return 2

    service = script("ocr_local_server.py", "cpu", "--model_root", str(args.model_root))
    with (started(service) as ocr,
          browser_page(ocr.base + "/", viewport={"width": args.width, "height": args.height})
          as (page, _)):
        page.set_input_files("#file", args.sample)
        page.locator("#result-1[data-state=done]").wait_for(timeout=60_000)
        png = page.screenshot()

    # Fewer colours, same look: a palette PNG is a fraction of the size of a true-colour one.
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=128, dither=Image.Dither.NONE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    size = args.out.stat().st_size
    print(f"{args.out}: {image.width}x{image.height}, {size} bytes")
    if size > MAX_BYTES:
        print(f"error: over {MAX_BYTES} bytes; try a smaller --width/--height", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
