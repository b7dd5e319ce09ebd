"""``SyntheticShapes``: the embedded offline benchmark as a dataset (same interface as the real datasets).

Twenty procedurally drawn object classes in a source domain (``photo``) and three shifted target domains
(``sketch``, ``cartoon``, ``corrupted``), with ``train``/``val``/``test`` splits. Image ``i`` of class ``c`` in
(domain, split) is rendered from a seed derived from ``(seed, domain, split, c, i)`` only, so a smaller
``per_class`` is a prefix of a larger one, and the images are identical on every machine. Rendered images are
cached as PNG files under ``root/<version>/<domain>/<split>/<class>/``; missing ones are rendered on first use.
"""
from __future__ import annotations

import os
import random
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

from promptsync.datasets.base import ClassificationDataset, Datum
from promptsync.datasets.subsets import apply_subset_options, base_new_range
from promptsync.registry import DATASETS
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import derive_seed

from .render import DOMAINS, render

logger = get_logger('datasets')

GENERATOR_VERSION = 'v1'
SPLITS = {'train': 0, 'val': 1, 'test': 2, 'pretrain': 3}
STYLE_IDS = {'photo': 0, 'sketch': 1, 'cartoon': 2, 'corrupted': 3, 'drawing': 4, 'clipart': 5}
DEFAULT_PER_CLASS = {'train': 200, 'val': 25, 'test': 50}
DATA = Path(__file__).parent / 'data'


@lru_cache(maxsize=None)
def class_names() -> tuple[str, ...]:
    return tuple(n.strip() for n in (DATA / 'classes.txt').read_text().splitlines() if n.strip())


def folder_of(name: str) -> str:
    return name.replace(' ', '_')


def image_seed(seed: int, style: str, split: str, label: int, index: int) -> int:
    return derive_seed(seed, STYLE_IDS[style], SPLITS[split], label, index)


def long_tail_counts(per_class: int, num_classes: int, ratio: float, seed: int) -> list[int]:
    """``per_class * ratio^(-rank / (K - 1))`` images for the class of rank ``rank`` (a seeded class order)."""
    if ratio < 1:
        raise ValueError(f'imbalance ratio must be >= 1 (head / tail), got {ratio}')
    ranks = list(range(num_classes))
    random.Random(derive_seed(seed, 99)).shuffle(ranks)
    return [max(1, round(per_class * ratio ** (-ranks[c] / max(1, num_classes - 1)))) for c in range(num_classes)]


def _render_to(job: tuple) -> None:
    path, shape, style, seed, image_size = job
    tmp = f'{path}.tmp-{os.getpid()}.png'
    render(shape, style, seed, image_size).image.save(tmp)
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written image


def ensure_rendered(jobs: list[tuple], workers: int = 2) -> int:
    """Render the jobs whose file is missing; returns how many were rendered."""
    todo = [j for j in jobs if not os.path.exists(j[0])]
    if not todo:
        return 0
    for d in {os.path.dirname(j[0]) for j in todo}:
        os.makedirs(d, exist_ok=True)
    logger.info('rendering %d synthetic images into %s', len(todo), os.path.commonpath([j[0] for j in todo]))
    if workers > 1 and len(todo) > 200:
        with get_context('spawn').Pool(workers) as pool:
            pool.map(_render_to, todo, chunksize=64)
    else:
        for job in todo:
            _render_to(job)
    return len(todo)


@DATASETS.register_module()
class SyntheticShapes(ClassificationDataset):
    """Args:
        root: cache folder of rendered images.
        domain: 'photo' (source) | 'sketch' | 'cartoon' | 'corrupted'.
        split: 'train' | 'val' | 'test' (disjoint seeds; choose hyper-parameters on 'val').
        per_class: images per class (default 200 / 25 / 50 for train / val / test).
        imbalance: ``dict(type='long_tail', ratio=R)``: class ``c`` keeps ``per_class * R^(-rank_c/(K-1))`` images
            (a seeded class ranking), the regime PromptSync targets; ``None`` = balanced.
        order: 'class' (sorted by class) or 'shuffled' (a seeded stream order, for online methods).
        image_size, seed: rendering resolution and the benchmark seed (part of the cache path).
        subsample: 'all' | 'base' | 'new' — CoOp's base-to-novel halves (base = the first 10 classes of
            classes.txt, new = the last 10, re-indexed from 0); only those classes' images are rendered.
    """

    generated = True  # the images are rendered into ``root`` on first use: a missing root is not an error

    def __init__(self, root: str, domain: str = 'photo', split: str = 'test', per_class: int | None = None,
                 imbalance: dict | None = None, order: str = 'class', image_size: int = 32, seed: int = 0,
                 workers: int = 2, subsample: str = 'all'):
        if domain not in DOMAINS:
            raise ValueError(f"domain '{domain}' is not one of {DOMAINS}")
        if split not in DEFAULT_PER_CLASS:
            raise ValueError(f"split '{split}' is not one of {sorted(DEFAULT_PER_CLASS)}")
        if order not in ('class', 'shuffled'):
            raise ValueError(f"order must be 'class' or 'shuffled', got '{order}'")
        names = class_names()
        per_class = per_class or DEFAULT_PER_CLASS[split]
        counts = [per_class] * len(names)
        if imbalance:
            imbalance = dict(imbalance)
            kind = imbalance.pop('type', 'long_tail')
            if kind != 'long_tail':
                raise ValueError(f"imbalance type '{kind}' is not supported (use 'long_tail')")
            counts = long_tail_counts(per_class, len(names), float(imbalance.pop('ratio', 10.0)), seed)
        self.name = f'shapes-{domain}'
        self.root = Path(root).expanduser() / f'{GENERATOR_VERSION}-{image_size}px-seed{seed}' / domain / split
        kept = base_new_range(len(names), subsample)
        jobs, samples = [], []
        for label, (name, count) in enumerate(zip(names, counts)):
            if label not in kept:
                continue
            for i in range(count):
                path = str(self.root / folder_of(name) / f'{i:05d}.png')
                jobs.append((path, name, domain, image_seed(seed, domain, split, label, i), image_size))
                samples.append(Datum(path, label))
        self.rendered = ensure_rendered(jobs, workers)
        if order == 'shuffled':
            random.Random(derive_seed(seed, 7, SPLITS[split])).shuffle(samples)
        self.domain, self.split, self.counts = domain, split, counts
        super().__init__(samples, list(names), class_ids=[folder_of(n) for n in names])
        apply_subset_options(self, subsample)  # re-indexes the kept classes from 0
        self.counts = counts[kept.start:kept.stop]
