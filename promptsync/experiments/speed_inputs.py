"""What a speed benchmark feeds the methods: the class list and the test images (real, or seeded synthetic ones).

Class names come from the dataset's shipped data files, never from its images: the ImageNet family from
``data/imagenet/classnames.txt`` and its index files (ImageNet-R: the 200 names of ``imagenet_r_indices.txt``),
the 10 CoOp targets from ``data/<key>/classnames.txt``, the shapes benchmark from its class list. A dataset that
names its classes only from its folders (``ImageFolder``) gives them when its folders are on disk; otherwise the
names are generated (``class 0``, ``class 1``, ...) and the benchmark says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from PIL import Image

from promptsync.datasets.base import LabelSpace
from promptsync.datasets.coop_split import CoOpSplitDataset
from promptsync.datasets.loading import load_rgb
from promptsync.datasets.resources import imagenet_wnids_and_names, read_indices, read_name_list
from promptsync.datasets.subsets import base_new_range
from promptsync.datasets.wnid_folders import WnidSubsetDataset
from promptsync.errors import ArgumentError
from promptsync.registry import DATASETS
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import derive_seed

from .compare_updates import spread

logger = get_logger('speed')
MISSING_DATA = (FileNotFoundError, NotADirectoryError)  # ResourceError is a FileNotFoundError


@dataclass
class Classes:
    space: LabelSpace
    source: str            # where the names come from
    generated: bool        # names made up ("class 0", ...): the dataset cannot name its classes without its images


@dataclass
class Item:
    """One test sample: ``image()`` returns the PIL image (read from disk for real images)."""
    index: int
    label: int
    path: str
    image: Callable[[], Image.Image]
    from_disk: bool


def _dataset_type(ds_cfg: Mapping):
    kind = ds_cfg.get('type')
    return DATASETS.get(kind) if isinstance(kind, str) else kind


def shipped_classes(ds_cfg: Mapping) -> Classes | None:
    """The label space a known dataset type declares in its data files (``None`` if it has none)."""
    cls = _dataset_type(ds_cfg)
    subsample = ds_cfg.get('subsample', 'all')
    if not isinstance(cls, type):
        return None
    if issubclass(cls, WnidSubsetDataset):
        wnids, names = imagenet_wnids_and_names()
        indices = list(read_indices(cls.indices_file) if cls.indices_file else range(len(wnids)))
        kept = [indices[j] for j in base_new_range(len(indices), subsample)]
        source = cls.indices_file or 'imagenet/classnames.txt'
        return Classes(LabelSpace(tuple(names[i] for i in kept), tuple(wnids[i] for i in kept)),
                       f'promptsync/datasets/data/{source}', False)
    if issubclass(cls, CoOpSplitDataset):
        names = read_name_list(f'{cls.key}/classnames.txt')
        kept = base_new_range(len(names), subsample)
        return Classes(LabelSpace(tuple(names[kept.start:kept.stop])), f'promptsync/datasets/data/{cls.key}/classnames.txt',
                       False)
    from promptsync.benchmarks.shapes import SyntheticShapes, class_names
    from promptsync.benchmarks.shapes.dataset import folder_of
    if issubclass(cls, SyntheticShapes):
        names = class_names()
        return Classes(LabelSpace(names, tuple(folder_of(n) for n in names)),
                       'promptsync/benchmarks/shapes/data/classes.txt', False)
    return None


def build_dataset(ds_cfg: Mapping):
    """The dataset of the config, or ``None`` when its images are not on disk."""
    try:
        return DATASETS.build(dict(ds_cfg))
    except MISSING_DATA as err:
        logger.info('the dataset cannot be built here (%s: %s)', type(err).__name__, str(err).splitlines()[0])
        return None


def benchmark_classes(ds_cfg: Mapping, n: int | None, dataset=None) -> Classes:
    """The first ``n`` classes (all when ``None``) of the config's dataset."""
    classes = shipped_classes(ds_cfg)
    if classes is None and dataset is not None:
        classes = Classes(dataset.label_space, f'the class folders of {getattr(dataset, "root", "the dataset")}', False)
    if classes is None:
        if n is None:
            raise ArgumentError(f'{ds_cfg.get("type")} names its classes only from its images, which are not on disk, '
                                'so the number of classes is unknown', where='--classes',
                                fix='give --classes C (generated names "class 0" ... are used), or point '
                                    'data.dataset.root at the images')
        classes = Classes(LabelSpace(tuple(f'class {i}' for i in range(n))),
                          f'generated: {ds_cfg.get("type")} names its classes only from its images, which are not '
                          'on disk', True)
    have = len(classes.space)
    if n is not None and n > have:
        raise ArgumentError(f'--classes {n}: the dataset ({ds_cfg.get("type")}) has only {have} classes '
                            f'({classes.source})', where='--classes',
                            fix=f'use --classes <= {have}, or a dataset with more classes, e.g. '
                                '--cfg-options data.dataset.type=ImageNet (1000 classes)')
    if n is not None:
        space = classes.space
        classes.space = LabelSpace(space.names[:n], space.ids[:n] if space.ids else None)
    return classes


def synthetic_image(seed: int, index: int, size) -> Image.Image:
    """A seeded uniform-noise RGB image of the backbone's input size ``(H, W)``."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    rng = np.random.default_rng(derive_seed(seed, 77, index))
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), 'RGB')


def synthetic_items(n: int, num_classes: int, seed: int, size) -> list[Item]:
    """``n`` synthetic images (made now, outside any timing); labels cycle over the classes."""
    out = []
    for i in range(n):
        img = synthetic_image(seed, i, size)
        out.append(Item(i, i % num_classes, f'synthetic:{i}', (lambda im=img: im), False))
    return out


def dataset_items(dataset, n: int, num_classes: int) -> list[Item]:
    """``n`` images spread over the dataset (it is sorted by class), among those of the first classes."""
    usable = [i for i, d in enumerate(dataset.samples) if d.label < num_classes]
    if not usable:
        raise ArgumentError(f'no image of the dataset belongs to the first {num_classes} classes', where='--classes',
                            fix='use more classes, or --synthetic')
    chosen = spread(usable, n)
    if len(chosen) < n:
        logger.warning('the dataset has %d usable images; %d were asked for', len(chosen), n)
    return [Item(i, dataset[i].label, dataset[i].path, (lambda p=dataset[i].path: load_rgb(p)), True) for i in chosen]
