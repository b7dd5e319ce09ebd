"""AugMix (Hendrycks et al., 2020) as TPT applies it to its augmented views.

Each augmented view mixes the random crop with ``width`` chains of 1..3 random PIL operations
(Dirichlet chain weights, Beta(1, 1) skip weight), in normalised tensor space. The operation list
and severity 1 follow TPT's fine-grained setting. Operation magnitudes scale with the image's own
size (TPT hard-codes 224 px for translations).
"""
from __future__ import annotations

from typing import Callable

import torch
from PIL import Image, ImageOps

from promptsync.utils.seeding import SampleRNG


def _level(severity: float, rng: SampleRNG) -> float:
    return float(rng.np.uniform(0.1, severity))


def _int(level: float, maxval: float) -> int:
    return int(level * maxval / 10)


def _float(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


def _sign(rng: SampleRNG) -> int:
    return -1 if rng.py.random() < 0.5 else 1


def autocontrast(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return ImageOps.autocontrast(img)


def equalize(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return ImageOps.equalize(img)


def posterize(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return ImageOps.posterize(img, 4 - _int(_level(severity, rng), 4))


def rotate(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return img.rotate(_sign(rng) * _int(_level(severity, rng), 30), resample=Image.BILINEAR)


def solarize(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return ImageOps.solarize(img, 256 - _int(_level(severity, rng), 256))


def _affine(img: Image.Image, coeffs: tuple) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, coeffs, resample=Image.BILINEAR)


def shear_x(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return _affine(img, (1, _sign(rng) * _float(_level(severity, rng), 0.3), 0, 0, 1, 0))


def shear_y(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return _affine(img, (1, 0, 0, _sign(rng) * _float(_level(severity, rng), 0.3), 1, 0))


def translate_x(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return _affine(img, (1, 0, _sign(rng) * _int(_level(severity, rng), img.size[0] / 3), 0, 1, 0))


def translate_y(img: Image.Image, severity: float, rng: SampleRNG) -> Image.Image:
    return _affine(img, (1, 0, 0, 0, 1, _sign(rng) * _int(_level(severity, rng), img.size[1] / 3)))


OPERATIONS: tuple[Callable, ...] = (autocontrast, equalize, posterize, rotate, solarize,
                                    shear_x, shear_y, translate_x, translate_y)


def augmix(crop: Image.Image, to_tensor: Callable[[Image.Image], torch.Tensor], rng: SampleRNG,
           severity: float = 1.0, width: int = 3, max_depth: int = 3) -> torch.Tensor:
    """``m * t(crop) + (1 - m) * sum_i w_i * t(chain_i(crop))`` with ``t`` = to-tensor + normalise."""
    base = to_tensor(crop)
    weights = rng.np.dirichlet([1.0] * width)
    m = float(rng.np.beta(1.0, 1.0))
    mix = torch.zeros_like(base)
    for w in weights:
        img = crop
        for _ in range(rng.py.randint(1, max_depth)):
            img = rng.py.choice(OPERATIONS)(img, severity, rng)
        mix += float(w) * to_tensor(img)
    return m * base + (1.0 - m) * mix
