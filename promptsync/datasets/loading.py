"""Image loading: any PIL-readable file as 8-bit RGB; failures name the file.

Every failure to read a file (missing, empty, not an image, corrupt or truncated data, a header claiming a
decompression-bomb size) raises ``OSError('cannot read image <path>: ...')``. Truncated files are never
padded: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left as it is (off by default).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

_WIDE_GREY = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')


def load_rgb(path: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == 'RGB':
                return img.copy()
            if img.mode in _WIDE_GREY:  # 16/32-bit greyscale: rescale the bit range to 8 bit
                arr = np.asarray(img).astype(np.float64)
                top = 65535.0 if img.mode.startswith('I;16') else max(float(arr.max()), 1.0)
                return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)).convert('RGB')
            return img.convert('RGB')
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise OSError(f'cannot read image {path}: {err}') from err
