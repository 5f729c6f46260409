"""Render the labelled images: the samples in samples/, the accuracy test sets in bench/sets/.

Each folder gets its images and labels.json. The images are committed, so only whoever changes
them needs this script and a CJK font (Debian: ``apt-get install fonts-noto-cjk``). Labels list
each image's text lines top to bottom, as the OCR services should return them. The samples' text
is chosen so that PP-OCRv4 reads it exactly with the kit's pipeline: no spaces next to Chinese
characters (the recogniser does not emit them), lines spaced so the detector neither splits nor
merges them.

    python tools/make_samples.py [--font PATH] [--font-index N] [--scale F] [--out samples]

The test sets are harder on purpose, so that models and settings differ on them. Regenerate them
(deterministic: seeded, same output with the same fonts and Pillow) with

    python tools/make_samples.py --set hard    # bench/sets/hard: degraded Chinese/English JPEGs
    python tools/make_samples.py --set latin   # bench/sets/latin: accented European text, PNG

``hard`` uses the CJK font; ``latin`` uses DejaVu Sans (Debian: ``fonts-dejavu-core``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
DEFAULT_INDEX = 2   # Noto Sans CJK SC in the .ttc collection
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
ROOT = Path(__file__).resolve().parent.parent
SEEDS = {"hard": 11, "latin": 12}

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


# Lines of the hard set: signs, notices and receipts, Chinese, English and both mixed, short
# enough to fit one line of a 600-900 px canvas at the largest size.
HARD_TEXT = [
    "欢迎光临本店", "营业时间上午九点至晚上十点", "请勿吸烟", "本店支持微信和支付宝付款",
    "地铁站出口在前方二百米", "会议室位于三楼东侧", "明天下午两点召开项目例会", "小心地滑",
    "禁止停车", "请保持安静", "今日特价商品一律八折", "售后服务电话请见背面",
    "北京市朝阳区建国路88号", "快递已送达请及时取件", "请排队等候叫号", "电梯维修暂停使用",
    "本产品保质期为十二个月", "儿童须在成人陪同下乘坐", "图书馆周一闭馆", "发票请在收银台开具",
    "温馨提示请带好随身物品", "春节期间正常营业", "公共卫生间在二楼", "票价成人50元儿童25元",
    "有效期至2025年12月31日", "第3号窗口办理业务", "共计人民币128.50元", "限高2.5米",
    "WiFi密码12345678", "客服热线400-800-1234", "Emergency exit only", "Please wait to be seated",
    "Staff only beyond this point", "Keep this door closed at all times",
    "Opening hours 9am to 6pm", "Platform 4 for the airport train", "Total due 42.80",
    "Thank you for shopping with us", "Turn off the lights when you leave",
    "Order number 2024-0815", "No entry without a ticket", "Free delivery on orders over 30",
    "Meeting room B is on the second floor", "Batteries not included", "Handle with care",
    "Check in from 2pm, check out by 11am", "Please recycle your empty bottles", "Wet paint",
    "Last update March 2024", "Deliver to reception desk",
]

# Lines of the latin set per language, full of the letters with diacritics the language uses.
LATIN_TEXT = {
    "fr": ["Le garçon mange une crème brûlée.", "La façade de l'église est rénovée.",
           "Où se trouve la gare du Nord", "Noël approche, les élèves sont ravis.",
           "Il a reçu un cadeau très spécial.", "Ça coûte cinq euros à la caisse.",
           "Un hôtel près du lac, à côté du château.", "Le cœur a ses raisons.",
           "Fermé le dimanche et les jours fériés."],
    "de": ["Größe und Gewicht stehen auf dem Etikett.", "Die Straße führt über die Brücke.",
           "Schöne Grüße aus München", "Wir öffnen täglich um acht Uhr.",
           "Der Bäcker verkauft frische Brötchen.", "Fußgänger müssen hier warten.",
           "Übung macht den Meister.", "Äpfel kosten zwei Euro das Kilo.",
           "Bitte nicht rauchen, danke schön."],
    "es": ["Nos vemos mañana por la mañana.", "El niño come piña en el jardín.",
           "¿Dónde está la estación?", "La canción es muy bonita.",
           "Él pidió una paella y un café.", "Año nuevo, vida nueva.",
           "El pingüino vive en la Antártida.", "¡Qué día tan frío!",
           "Abierto de lunes a sábado."],
    "pt": ["A ação começa às nove horas.", "Não há pão na padaria hoje.",
           "A informação está na recepção.", "Coração de mãe sempre perdoa.",
           "Obrigado pela atenção.", "As lições de português são úteis.",
           "Avós e irmãos jantaram juntos.", "A estação fica à esquerda.",
           "Promoção válida até sábado."],
    "it": ["La città è più bella di sera.", "Perché non vieni al caffè?",
           "Il menù del giorno è già pronto.", "Lunedì e martedì siamo chiusi.",
           "Però la qualità è ottima.", "Un tè caldo, per favore.",
           "L'università è lì, dietro la piazza.", "Così è la vita.",
           "Può darsi che arrivi giovedì."],
    "pl": ["Łódź leży w centrum Polski.", "Zażółć gęślą jaźń.",
           "Pchnąć w tę łódź jeża lub ośm skrzyń fig.", "Dzień dobry, jak się masz?",
           "Gdańsk, Kraków i Wrocław", "Proszę zamknąć drzwi.", "Mały kot śpi na półce.",
           "Żółw idzie powoli przez łąkę.", "Wejście od ulicy Świętokrzyskiej."],
    "cs": ["Příliš žluťoučký kůň úpěl ďábelské ódy.", "Děkuji za pomoc.",
           "Dobrý den, jak se máte?", "Náměstí je hned za rohem.",
           "Čeština má háčky a čárky.", "Řeka teče pod mostem.",
           "Vstup zakázán, soukromý pozemek.", "Brno, Plzeň a České Budějovice",
           "Otevřeno od úterý do neděle."],
    "tr": ["Ağaç, şimdi, İstanbul", "Günaydın, nasılsınız?", "Çay ve simit için teşekkürler.",
           "Öğrenciler sınıfta ödev yapıyor.", "Işık yeşil olunca geçin.",
           "Bugün hava çok güzel.", "Şehir merkezi kuzeyde.",
           "Kapı açık, içeri girebilirsiniz.", "Çıkış kapısı sağda, lütfen dikkat."],
}


def load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError:
        sys.exit(f"error: cannot load the font {path!r} (index {index}); install it (Debian: "
                 f"apt-get install fonts-noto-cjk, or fonts-dejavu-core for DejaVu) or pass "
                 f"--font PATH")


def line_width(words: list[str], font: ImageFont.FreeTypeFont) -> float:
    """The width of a line drawn word by word, ``WORD_GAP`` apart."""
    return sum(font.getlength(w) for w in words) + WORD_GAP * font.size * (len(words) - 1)


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
        y += gap
        placed.append((words, font, colour, stroke, y - top, line_width(words, font)))
        y += bottom - top
    img = Image.new("RGB", (width, y + margin), background)
    draw = ImageDraw.Draw(img)
    for words, font, colour, stroke, top, width_ in placed:
        x = (width - width_) / 2 if align == "center" else margin
        for word in words:
            draw.text((x, top), word, font=font, fill=colour, stroke_width=stroke,
                      stroke_fill=colour)
            x += font.getlength(word) + WORD_GAP * font.size
    return img


def add_noise(img: Image.Image, seed: int, sigma: float = 4) -> Image.Image:
    """Sensor noise, as in a photo (mild by default)."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16) + rng.normal(0, sigma, (img.height, img.width, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# name -> (image, its lines top to bottom, keyword arguments of Image.save)
ImageSet = dict[str, tuple[Image.Image, list[str], dict]]


def sample_set(font_path: str, font_index: int, scale: float) -> ImageSet:
    """The committed samples: the JPEGs with mild noise, the PNGs clean, like screenshots."""
    images = {}
    for seed, (name, (width, background, align, lines)) in enumerate(SAMPLES.items()):
        img = render(width, background, align, lines, font_path, font_index, scale)
        if name.endswith(".jpg"):
            images[name] = (add_noise(img, seed), [line[0] for line in lines], {"quality": 90})
        else:
            images[name] = (img, [line[0] for line in lines], {"optimize": True})
    return images


def colours(rng: np.random.Generator, low_contrast: bool) -> tuple[tuple, tuple]:
    """A light background and dark ink, or (low contrast) a mid-grey tinted background with ink
    only 55-85 levels darker."""
    if low_contrast:
        background = rng.integers(150, 215, 3)
        ink = background - rng.integers(55, 86)
    else:
        background, ink = rng.integers(215, 256, 3), rng.integers(0, 90, 3)
    return tuple(int(c) for c in background), tuple(int(c) for c in ink)


def stacked(rng: np.random.Generator, texts: list[str], size: int, ink: tuple,
            bold_title: bool) -> list:
    """``render``'s lines: a top margin, then gaps of 0.8-1.3 line heights, wide enough that
    the detector keeps the lines apart even blurred and tilted."""
    return [(text, size, ink, bold_title and k == 0,
             int(rng.integers(30, 51)) if k == 0 else round(size * rng.uniform(0.8, 1.3)))
            for k, text in enumerate(texts)]


def canvas_width(rng: np.random.Generator, texts: list[str], font: ImageFont.FreeTypeFont) -> int:
    """600-900 px, or as wide as the widest line needs (with render's 40 px margins)."""
    needed = max(line_width(t.split(" "), font) for t in texts) + 2 * 40 + 4
    return max(int(rng.integers(600, 901)), int(needed))


def padded(img: Image.Image, background: tuple) -> Image.Image:
    """The image with blank page below, to at least 0.3 times as high as wide: a det resize to
    a minimum short side (PaddleOCR 3's 736 px) enlarges a short strip so much that its word gaps
    split the lines into words."""
    height = int(img.width * 0.3)
    if img.height >= height:
        return img
    page = Image.new("RGB", (img.width, height), background)
    page.paste(img)
    return page


def hard_set(font_path: str, font_index: int, rng: np.random.Generator) -> ImageSet:
    """30 photos of short notices, degraded as phone photos are: small text (x-height 10-16 px),
    a tilt of up to 3 degrees, blur, noise, JPEG quality 15-40, and a quarter in low contrast.
    Everything is drawn from ``rng`` in a fixed order, so each run gives the same set."""
    box = load_font(font_path, font_index, 100).getbbox("x")
    x_height = (box[3] - box[1]) / 100   # per px of font size
    images = {}
    for i in range(30):
        texts = [str(t) for t in rng.choice(HARD_TEXT, int(rng.integers(2, 6)), replace=False)]
        size = round(rng.uniform(10, 16) / x_height)
        background, ink = colours(rng, rng.random() < 0.25)
        lines = stacked(rng, texts, size, ink, rng.random() < 0.4)
        width = canvas_width(rng, texts, load_font(font_path, font_index, size))
        align = "center" if rng.random() < 0.5 else "left"
        img = padded(render(width, background, align, lines, font_path, font_index), background)
        img = img.rotate(rng.uniform(-3, 3), Image.BICUBIC, expand=True, fillcolor=background)
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.3)))
        img = add_noise(img, int(rng.integers(2**32)), rng.uniform(3, 10))
        images[f"hard_{i:02d}.jpg"] = (img, texts, {"quality": int(rng.integers(15, 41))})
    return images


def latin_set(font_path: str, font_index: int, rng: np.random.Generator) -> ImageSet:
    """40 clean-ish documents, five per language, each 1-3 of its lines at 22-32 px; a third
    mildly blurred and a fifth with mild noise (the noise makes a PNG ten times as large).
    Seeded like the hard set."""
    images = {}
    for i in range(40):
        lang = list(LATIN_TEXT)[i % len(LATIN_TEXT)]
        texts = [str(t) for t in rng.choice(LATIN_TEXT[lang], int(rng.integers(1, 4)),
                                            replace=False)]
        size = int(rng.integers(22, 33))
        background, ink = colours(rng, False)
        lines = stacked(rng, texts, size, ink, rng.random() < 0.3)
        width = canvas_width(rng, texts, load_font(font_path, font_index, size))
        img = padded(render(width, background, "left", lines, font_path, font_index), background)
        if rng.random() < 1 / 3:
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
        if rng.random() < 0.2:
            img = add_noise(img, int(rng.integers(2**32)), rng.uniform(2, 3))
        images[f"latin_{i:02d}_{lang}.png"] = (img, texts, {"optimize": True})
    return images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="which", choices=("samples", "hard", "latin"),
                        default="samples", help="which images to render")
    parser.add_argument("--font", help="TrueType/OpenType font file (default: Noto Sans CJK, "
                                       "DejaVu Sans for latin)")
    parser.add_argument("--font-index", type=int,
                        help="face index in a .ttc collection (2 = SC for Noto Sans CJK)")
    parser.add_argument("--scale", type=float, default=SCALE,
                        help="size factor of every sample image (samples only)")
    parser.add_argument("--out", type=Path, help="default: samples/, or bench/sets/SET")
    args = parser.parse_args(argv)
    latin = args.which == "latin"
    font = args.font or (LATIN_FONT if latin else DEFAULT_FONT)
    index = args.font_index if args.font_index is not None else 0 if latin else DEFAULT_INDEX
    if args.which == "samples":
        out = args.out or ROOT / "samples"
        images = sample_set(font, index, args.scale)
    else:
        out = args.out or ROOT / "bench" / "sets" / args.which
        build = latin_set if latin else hard_set
        images = build(font, index, np.random.default_rng(SEEDS[args.which]))
    out.mkdir(parents=True, exist_ok=True)
    for name, (img, _, save_args) in images.items():
        img.save(out / name, **save_args)
    with open(out / "labels.json", "w", encoding="utf-8") as f:
        json.dump({name: lines for name, (_, lines, _) in images.items()}, f,
                  ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {len(images)} images and labels.json to {out}")


if __name__ == "__main__":
    main()
