"""Procedural rendering of one object in one visual style (domain), deterministic from a seed.

Objects are drawn at ``SUPERSAMPLE`` x the output size and box-filtered down (anti-aliasing). Styles:

* ``photo`` (the source domain, like ImageNet photos): a shaded, saturated object with a soft shadow on a
  cluttered, gradient background, light sensor noise;
* ``sketch``: a grey/black pencil contour on paper, no fill (like ImageNet-Sketch);
* ``cartoon``: a flat pastel fill with a thick dark outline on a patterned pastel background (like ImageNet-R);
* ``corrupted``: a photo degraded by noise, blur, low contrast or pixelation (like ImageNet-C);
* ``drawing`` and ``clipart``: the small share of other styles in the *pretraining* data (coloured line
  drawings; flat icons on white), as web data would contain.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .geometry import ROTATION_FREE, SHAPES

SUPERSAMPLE = 4
TARGET_DOMAINS = ('sketch', 'cartoon', 'corrupted')
DOMAINS = ('photo',) + TARGET_DOMAINS
PRETRAIN_STYLES = ('photo', 'drawing', 'clipart', 'sketch', 'cartoon')
DATA = Path(__file__).parent / 'data'


@lru_cache(maxsize=None)
def palette(kind: str) -> dict[str, tuple[int, int, int]]:
    return {k: tuple(v) for k, v in json.loads((DATA / 'palette.json').read_text())[kind].items()}


@dataclass
class Rendered:
    image: Image.Image
    shape: str
    color: str          # colour word of the object (for captions)
    size: str           # 'small' | 'large'


def _mask(shape: str, rng: random.Random, side: int) -> tuple[Image.Image, str]:
    """The object's mask at ``side`` px and a size word."""
    parts = SHAPES[shape](rng)
    scale = rng.uniform(0.55, 0.85)
    angle = rng.uniform(-math.pi, math.pi) if shape in ROTATION_FREE else rng.uniform(-0.26, 0.26)
    aspect = rng.uniform(0.88, 1.12)
    margin = 1.0 - scale
    cx, cy = rng.uniform(-margin, margin) * 0.8, rng.uniform(-margin, margin) * 0.8
    ca, sa = math.cos(angle), math.sin(angle)
    half = side / 2

    def to_px(x, y):
        x, y = x * aspect, y / aspect
        xr, yr = x * ca - y * sa, x * sa + y * ca
        return (half + (cx + scale * xr) * half, half - (cy + scale * yr) * half)
    mask = Image.new('L', (side, side), 0)
    draw = ImageDraw.Draw(mask)
    for poly, hole in sorted(parts, key=lambda p: p[1]):  # fills first, then holes
        draw.polygon([to_px(x, y) for x, y in poly], fill=0 if hole else 255)
    return mask, 'large' if scale > 0.7 else 'small'


def _jitter(rgb, rng: random.Random, amount: int = 25) -> np.ndarray:
    return np.clip(np.array(rgb, dtype=np.float32) + [rng.uniform(-amount, amount) for _ in range(3)], 0, 255)


def _gradient(side: int, c0, c1, rng: random.Random) -> np.ndarray:
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:side, 0:side] / side - 0.5
    t = np.clip((xx * math.cos(a) + yy * math.sin(a)) + 0.5, 0, 1)[..., None]
    return (1 - t) * np.asarray(c0, np.float32) + t * np.asarray(c1, np.float32)


def _clutter(img: Image.Image, rng: random.Random, count: int, colors) -> None:
    draw = ImageDraw.Draw(img, 'RGBA')
    side = img.size[0]
    for _ in range(count):
        x, y = rng.uniform(0, side), rng.uniform(0, side)
        r = rng.uniform(0.03, 0.08) * side
        col = tuple(int(v) for v in _jitter(rng.choice(colors), rng, 40)) + (rng.randint(40, 110),)
        box = (x - r, y - r * rng.uniform(0.4, 1.0), x + r, y + r * rng.uniform(0.4, 1.0))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=col)


def _edges(mask: Image.Image, width: int) -> Image.Image:
    """A contour of ``width`` px along the mask boundary (morphological gradient)."""
    size = 2 * width + 1
    return Image.fromarray(np.asarray(mask.filter(ImageFilter.MaxFilter(size)), np.int16).__sub__(
        np.asarray(mask.filter(ImageFilter.MinFilter(size)), np.int16)).clip(0, 255).astype(np.uint8))


def _photo(mask, rng, side):
    colors = list(palette('saturated').items())
    name, rgb = rng.choice(colors)
    bg = _gradient(side, _jitter(rng.choice(colors)[1], rng, 60) * 0.7, _jitter(rng.choice(colors)[1], rng, 60) * 0.7, rng)
    img = Image.fromarray(bg.astype(np.uint8))
    _clutter(img, rng, rng.randint(2, 7), [c for _, c in colors])
    base = np.asarray(img, np.float32)
    shadow = np.asarray(mask.filter(ImageFilter.GaussianBlur(side * 0.03)), np.float32)[..., None] / 255
    dx, dy = rng.randint(2, side // 20 + 2), rng.randint(2, side // 20 + 2)
    shadow = np.roll(np.roll(shadow, dx, axis=1), dy, axis=0)
    base = base * (1 - 0.45 * shadow)
    light = _gradient(side, (0.65,) * 3, (1.15,) * 3, rng)
    obj = np.clip(_jitter(rgb, rng, 20) * light, 0, 255)
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    out = base * (1 - alpha) + obj * alpha
    return out, name


def _sketch(mask, rng, side):
    paper = np.full((side, side, 3), rng.uniform(225, 250), np.float32) * _jitter((1, 1, 1), rng, 0)
    paper += np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (side, side, 1))
    width = rng.randint(max(1, side // 64), max(2, side // 28))
    edge = np.asarray(_edges(mask, width).filter(ImageFilter.GaussianBlur(0.6)), np.float32)[..., None] / 255
    ink = rng.uniform(20, 90)
    return paper * (1 - edge) + ink * edge, 'black'


def _cartoon(mask, rng, side):
    colors = list(palette('pastel').items())
    name, rgb = rng.choice(colors)
    c0, c1 = rng.sample([c for _, c in colors], 2)
    yy, xx = np.mgrid[0:side, 0:side]
    period = rng.randint(side // 10, side // 5)
    kind = rng.choice(('stripes', 'checks', 'dots'))
    if kind == 'stripes':
        sel = ((xx + yy) // period) % 2 == 0
    elif kind == 'checks':
        sel = ((xx // period) + (yy // period)) % 2 == 0
    else:
        sel = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 4) ** 2
    bg = np.where(sel[..., None], np.asarray(c0, np.float32), np.asarray(c1, np.float32))
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    out = bg * (1 - alpha) + np.asarray(rgb, np.float32) * alpha
    edge = np.asarray(_edges(mask, rng.randint(side // 40 + 1, side // 20 + 1)), np.float32)[..., None] / 255
    return out * (1 - edge) + rng.uniform(10, 50) * edge, name


def _visible_on_white() -> list:
    return [(k, v) for k, v in palette('saturated').items() if k not in ('white', 'gray')]


def _drawing(mask, rng, side):
    name, rgb = rng.choice(_visible_on_white())
    bg = np.full((side, side, 3), rng.uniform(200, 255), np.float32)
    edge = np.asarray(_edges(mask, rng.randint(side // 60 + 1, side // 30 + 1)), np.float32)[..., None] / 255
    return bg * (1 - edge) + np.asarray(rgb, np.float32) * edge, name


def _clipart(mask, rng, side):
    name, rgb = rng.choice(_visible_on_white())
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    return np.full((side, side, 3), 250, np.float32) * (1 - alpha) + np.asarray(rgb, np.float32) * alpha, name


def _corrupt(img: Image.Image, rng: random.Random) -> Image.Image:
    kind = rng.choice(('noise', 'blur', 'contrast', 'pixelate'))
    if kind == 'blur':
        return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.9, 1.4)))
    if kind == 'pixelate':
        small = max(6, int(img.size[0] * rng.uniform(0.28, 0.4)))
        return img.resize((small, small), Image.BOX).resize(img.size, Image.NEAREST)
    arr = np.asarray(img, np.float32)
    if kind == 'noise':
        arr = arr + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(40, 60), arr.shape)
    else:
        arr = (arr - arr.mean()) * rng.uniform(0.18, 0.3) + arr.mean()
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


_STYLES = {'photo': _photo, 'sketch': _sketch, 'cartoon': _cartoon, 'drawing': _drawing, 'clipart': _clipart}


def render(shape: str, style: str, seed: int, image_size: int = 32) -> Rendered:
    """Draw ``shape`` in ``style`` (a domain or a pretraining style) from ``seed``."""
    if shape not in SHAPES:
        raise KeyError(f"unknown shape '{shape}'; classes: {sorted(SHAPES)}")
    base_style = 'photo' if style == 'corrupted' else style
    if base_style not in _STYLES:
        raise KeyError(f"unknown style '{style}'; domains: {DOMAINS}, pretraining styles: {PRETRAIN_STYLES}")
    rng = random.Random(seed)
    side = image_size * SUPERSAMPLE
    mask, size_word = _mask(shape, rng, side)
    arr, color = _STYLES[base_style](mask, rng, side)
    if base_style == 'photo':
        arr = arr + np.random.default_rng(rng.getrandbits(32)).normal(0, 4, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).reduce(SUPERSAMPLE)
    if style == 'corrupted':
        img = _corrupt(img, rng)
    return Rendered(img, shape, color, size_word)
