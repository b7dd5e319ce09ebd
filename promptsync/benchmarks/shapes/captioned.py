"""Captioned pretraining images of the shapes benchmark, rendered in memory (the tiny CLIP's "web data").

Mostly source-style photos, plus a small share of other styles (line drawings, clipart, sketches, cartoons) as
web data would contain. The images are disjoint from the benchmark's splits (their own seeds), and no corrupted
images are rendered: like ImageNet-C for CLIP, that shift is never seen. Every image comes
from a seed derived from ``(seed, style, 'pretrain', class, index)``, disjoint from the benchmark's splits.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

from promptsync.utils.seeding import derive_seed

from .dataset import DATA, class_names, image_seed
from .render import PRETRAIN_STYLES, render


@dataclass
class CaptionedImages:
    images: np.ndarray        # [N, H, W, 3] uint8
    labels: np.ndarray        # [N] class index
    captions: list[str]
    styles: list[str]


def caption_templates() -> dict[str, list[str]]:
    return json.loads((DATA / 'captions.json').read_text())


def _render_one(job: tuple) -> tuple[np.ndarray, str, str]:
    shape, style, seed, image_size = job
    r = render(shape, style, seed, image_size)
    return np.asarray(r.image), r.color, r.size


def render_captioned(per_style: dict[str, int], seed: int = 0, image_size: int = 32,
                     workers: int = 2) -> CaptionedImages:
    """``per_style[style]`` images of each pretraining style, classes cycling, with one caption each."""
    bad = [s for s in per_style if s not in PRETRAIN_STYLES]
    if bad:
        raise ValueError(f'unknown pretraining styles {bad}; use {PRETRAIN_STYLES}')
    names = class_names()
    jobs, labels, styles = [], [], []
    for style, count in per_style.items():
        for i in range(count):
            label = i % len(names)
            jobs.append((names[label], style, image_seed(seed, style, 'pretrain', label, i // len(names)), image_size))
            labels.append(label)
            styles.append(style)
    if workers > 1:
        with get_context('spawn').Pool(workers) as pool:
            out = pool.map(_render_one, jobs, chunksize=256)
    else:
        out = [_render_one(j) for j in jobs]
    templates = caption_templates()
    rng = random.Random(derive_seed(seed, 1234))
    captions = [rng.choice(templates[style]).format(shape=names[label], color=color, size=size)
                for (_, color, size), label, style in zip(out, labels, styles)]
    return CaptionedImages(np.stack([o[0] for o in out]), np.asarray(labels), captions, styles)
