"""Few-shot subsets: ``K`` images per class, chosen by a seeded hash of each image's relative path.

Every image gets the key ``sha256(f'{seed}:{relative path}')``; a class keeps the ``K`` images with the
smallest keys. The choice therefore depends only on ``(seed, K)`` and on which files exist, never on the order
in which a dataset lists them, nor on where the dataset root is mounted. The sets are nested: the 8-shot set
of a seed is a subset of its 16-shot set.

A class with fewer than ``K`` images is an error by default (``short_classes='error'``); with
``short_classes='use_all'`` such a class contributes all its images, and the classes concerned are counted,
logged and recorded in ``fewshot_indices.json``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from promptsync.datasets.base import ClassificationDataset
from promptsync.utils.logging import get_logger

logger = get_logger('fewshot')
SHORT_CLASS_POLICIES = ('error', 'use_all')


@dataclass
class FewShotSubset:
    indices: list[int]                                  # dataset indices, sorted
    num_shots: int | None                               # None = every image
    seed: int
    short_classes: dict[str, int] = field(default_factory=dict)  # class name -> images available (< K)

    def to_json(self, dataset: ClassificationDataset) -> dict:
        return dict(num_shots=self.num_shots, seed=self.seed, num_images=len(self.indices),
                    num_classes=dataset.num_classes, short_classes=self.short_classes, indices=self.indices,
                    paths=[sample_key(dataset, i) for i in self.indices],
                    labels=[dataset[i].label for i in self.indices])


def sample_key(dataset: ClassificationDataset, index: int) -> str:
    """The image's path relative to the dataset root (the full path when the dataset has no ``root``)."""
    path = dataset[index].path
    root = getattr(dataset, 'root', None)
    if root is not None:
        try:
            return os.path.relpath(path, str(root)).replace(os.sep, '/')
        except ValueError:  # another drive (Windows)
            pass
    return path


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f'{int(seed)}:{key}'.encode()).hexdigest()


def sample_few_shot(dataset: ClassificationDataset, num_shots: int | None, seed: int,
                    short_classes: str = 'error', option_prefix: str = 'train_data.') -> FewShotSubset:
    """``num_shots`` images per class of ``dataset`` (``None`` = all images).

    ``option_prefix`` is where the options live in the config, for the error messages (``'train_data.'`` for
    the trainer, ``'dataset.'`` for the datasets' own ``num_shots`` option).
    """
    p = option_prefix
    if short_classes not in SHORT_CLASS_POLICIES:
        raise ValueError(f"{p}short_classes='{short_classes}' is not one of {SHORT_CLASS_POLICIES}")
    if num_shots is None:
        return FewShotSubset(list(range(len(dataset))), None, seed)
    if int(num_shots) < 1:
        raise ValueError(f'{p}num_shots must be >= 1 (or None for every image), got {num_shots}')
    k = int(num_shots)
    by_class: dict[int, list[tuple[str, int]]] = {c: [] for c in range(dataset.num_classes)}
    for index in range(len(dataset)):
        by_class[dataset[index].label].append((_rank(seed, sample_key(dataset, index)), index))
    short = {dataset.classnames[c]: len(items) for c, items in by_class.items() if len(items) < k}
    if short and short_classes == 'error':
        listed = ', '.join(f'{name!r} ({n})' for name, n in list(short.items())[:8])
        raise ValueError(
            f'{len(short)} of {dataset.num_classes} classes have fewer than num_shots={k} training images: {listed}'
            f"{' ...' if len(short) > 8 else ''}. Lower {p}num_shots, or set "
            f"{p}short_classes='use_all' to train on every image of those classes.")
    if short:
        logger.warning('%d classes have fewer than %d images and contribute all of them: %s', len(short), k,
                       dict(list(short.items())[:8]))
    chosen = [index for items in by_class.values() for _, index in sorted(items)[:k]]
    return FewShotSubset(sorted(chosen), k, seed, short)
