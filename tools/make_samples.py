"""Render the sample images in samples/ and their labels (samples/labels.json).

The images are committed, so only whoever changes them needs this script and a CJK font
(Debian: ``apt-get install fonts-noto-cjk``). Labels list each image's text lines top to bottom,
as the OCR services should return them. The text is chosen so that PP-OCRv4 reads it exactly with
the kit's pipeline: no spaces next to Chinese characters (the recogniser does not emit them),
lines spaced so the detector neither splits nor merges them.

    python tools/make_samples.py [--font PATH] [--font-index N] [--scale F] [--out samples]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
DEFAULT_INDEX = 2   # Noto Sans CJK SC in the .ttc collection

# Space between words as a fraction of the font size: the font's own space (~0.22 em) is often
# dropped by the recogniser, much wider and the detector splits the line into words.
WORD_GAP = 0.38

# Every size below is doubled: the images are then wider than the det limit (960) and are shrunk
# for det, which gives slightly looser boxes, with which the recogniser keeps the word spaces.
SCALE = 2.0

WHITE, BLACK, INK = (255, 255, 255), (20, 20, 20), (40, 40, 60)

# name -> (canvas width, background RGB, alignment, [(text, size, colour, bold, gap before)])
SAMPLES = {
    "sign_exit.jpg": (640, (200, 30, 30), "center", [
        ("安全出口", 96, WHITE, True, 40),
        ("EXIT", 64, WHITE, True, 36),
    ]),
    "sign_shop.jpg": (720, (20, 70, 150), "center", [
        ("OPEN", 80, WHITE, True, 40),
        ("Welcome to our store", 40, (255, 220, 90), False, 36),
    ]),
    "sign_street.jpg": (720, (20, 110, 60), "center", [
        ("中山北路", 88, WHITE, True, 36),
        ("Zhongshan Road North", 40, WHITE, False, 30),
    ]),
    "doc_chinese.png": (800, WHITE, "left", [
        ("关于开展春季安全检查的通知", 36, BLACK, True, 40),
        ("各部门请于本周五之前完成自查工作", 26, INK, False, 36),
        ("检查内容包括消防设备和电路安全", 26, INK, False, 24),
        ("发现问题要及时上报并整改", 26, INK, False, 24),
        ("请各位同事积极配合", 26, INK, False, 24),
        ("办公室", 26, INK, False, 36),
    ]),
    "doc_english.png": (800, WHITE, "left", [
        ("Minutes", 36, BLACK, True, 40),
        ("The team agreed to release the new version next week.", 24, INK, False, 36),
        ("Please review the open issues before Friday.", 24, INK, False, 22),
        ("Testing will start on Monday morning", 24, INK, False, 22),
        ("Contact the project lead with any questions.", 24, INK, False, 22),
    ]),
    "doc_mixed.png": (820, (250, 248, 240), "left", [
        ("产品说明书", 34, BLACK, True, 40),
        ("型号A200", 26, INK, False, 34),
        ("额定电压220V", 26, INK, False, 24),
        ("额定功率1500W", 26, INK, False, 24),
        ("请勿在潮湿环境中使用", 26, INK, False, 24),
        ("Do not use near water", 26, INK, False, 24),
    ]),
    "receipt.png": (460, (252, 252, 250), "left", [
        ("幸福超市", 36, BLACK, True, 36),
        ("2024年3月15日", 22, INK, False, 26),
        ("牛奶2盒共13.00元", 24, INK, False, 30),
        ("面包1个共8.00元", 24, INK, False, 22),
        ("苹果3斤共12.60元", 24, INK, False, 22),
        ("合计33.60元", 28, BLACK, True, 30),
        ("谢谢惠顾", 24, INK, False, 30),
    ]),
    "price_tag.jpg": (560, (255, 210, 40), "center", [
        ("特价", 80, (200, 20, 20), True, 30),
        ("39.90元", 96, (200, 20, 20), True, 24),
        ("原价59.00元", 36, BLACK, False, 24),
    ]),
    "notice_english.jpg": (760, (235, 242, 250), "center", [
        ("NOTICE", 72, (180, 20, 20), True, 40),
        ("No parking in the fire lane", 36, BLACK, False, 34),
        ("Violators will be towed", 32, BLACK, False, 26),
    ]),
    "menu.jpg": (600, (255, 250, 235), "left", [
        ("今日菜单", 44, (120, 40, 20), True, 36),
        ("红烧牛肉面28元", 28, INK, False, 32),
        ("番茄鸡蛋饭22元", 28, INK, False, 24),
        ("Fried rice 25", 28, INK, False, 24),
        ("Green tea 10", 28, INK, False, 24),
    ]),
}


def load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError:
        sys.exit(f"error: cannot load the CJK font {path!r} (index {index}); install one "
                 f"(Debian: apt-get install fonts-noto-cjk) or pass --font PATH")


def render(width: int, background: tuple, align: str, lines: list, font_path: str,
           font_index: int, scale: float = 1.0) -> Image.Image:
    """Lines stacked top to bottom with the given gaps (all sizes times ``scale``); the
    height fits the text. Words are drawn one by one, ``WORD_GAP`` apart."""
    width, margin = int(width * scale), int(40 * scale)
    placed, y = [], 0
    for text, size, colour, bold, gap in lines:
        size, gap = round(size * scale), round(gap * scale)
        font = load_font(font_path, font_index, size)
        stroke = max(1, size // 40) if bold else 0
        words = text.split(" ")
        boxes = [font.getbbox(word, stroke_width=stroke) for word in words]
        top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
        line_width = sum(font.getlength(w) for w in words) + WORD_GAP * size * (len(words) - 1)
        y += gap
        placed.append((words, font, colour, stroke, y - top, line_width))
        y += bottom - top
    img = Image.new("RGB", (width, y + margin), background)
    draw = ImageDraw.Draw(img)
    for words, font, colour, stroke, top, line_width in placed:
        x = (width - line_width) / 2 if align == "center" else margin
        for word in words:
            draw.text((x, top), word, font=font, fill=colour, stroke_width=stroke,
                      stroke_fill=colour)
            x += font.getlength(word) + WORD_GAP * font.size
    return img


def add_noise(img: Image.Image, seed: int) -> Image.Image:
    """Mild sensor noise, as in a photo (JPEGs only: PNGs stay clean, like screenshots)."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16) + rng.normal(0, 4, (img.height, img.width, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", default=DEFAULT_FONT, help="TrueType/OpenType CJK font file")
    parser.add_argument("--font-index", type=int, default=DEFAULT_INDEX,
                        help="face index in a .ttc collection (2 = SC for Noto Sans CJK)")
    parser.add_argument("--scale", type=float, default=SCALE, help="size factor of every image")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "samples")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    labels = {}
    for seed, (name, (width, background, align, lines)) in enumerate(SAMPLES.items()):
        img = render(width, background, align, lines, args.font, args.font_index, args.scale)
        if name.endswith(".jpg"):
            add_noise(img, seed).save(args.out / name, quality=90)
        else:
            img.save(args.out / name, optimize=True)
        labels[name] = [line[0] for line in lines]
    with open(args.out / "labels.json", "w", encoding="utf-8") as f:
        json.dump(labels, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {len(labels)} images and labels.json to {args.out}")


if __name__ == "__main__":
    main()
