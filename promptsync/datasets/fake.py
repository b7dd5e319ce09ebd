"""Small generated image trees for tests, smoke runs and documentation examples (no downloads)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw


def make_image(rng: random.Random, size: tuple[int, int] = (40, 36), mode: str = 'RGB') -> Image.Image:
    """A random background with a random filled ellipse or rectangle."""
    img = Image.new('RGB', size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    x0, y0 = rng.randrange(w // 2), rng.randrange(h // 2)
    box = (x0, y0, x0 + rng.randrange(4, w // 2 + 4), y0 + rng.randrange(4, h // 2 + 4))
    fill = tuple(rng.randrange(256) for _ in range(3))
    (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return img if mode == 'RGB' else img.convert(mode)


def make_image_folder(root: str | Path, classes: Sequence[str], per_class: int | Sequence[int] = 3,
                      size: tuple[int, int] = (40, 36), seed: int = 0, ext: str = 'png') -> Path:
    """``root/<class>/<k>.<ext>`` with ``per_class`` images per class (an int or one count per class)."""
    root = Path(root)
    rng = random.Random(seed)
    counts = [per_class] * len(classes) if isinstance(per_class, int) else list(per_class)
    for name, count in zip(classes, counts):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            make_image(rng, size).save(folder / f'{k:04d}.{ext}')
    return root
