"""``ViewDataset``: load sample ``i`` and generate its views with randomness derived from ``(seed, i)``.

Unreadable images (corrupt, truncated, empty, not an image): by default reading one raises an error naming the
file. With ``skip_unreadable=True`` the item is a *marker* ``dict(skipped=dict(index, path, error))`` instead, and
the loader must use :func:`collate_views`, which drops the markers from the batch and lists them in
``batch['skipped']``; a batch may then hold no sample at all (``len(batch['index']) == 0``).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset, default_collate

from promptsync.utils.seeding import SampleRNG

from .base import ClassificationDataset
from .loading import load_rgb

#: how many skipped paths a summary (metrics.json, bank / checkpoint metadata, train log) lists by name
SKIPPED_LISTED = 10


def unreadable_record(index: int, path: str, err: BaseException) -> dict:
    """``dict(index, path, error)`` of an image that could not be read (the error without the path prefix)."""
    cause = err.__cause__ if err.__cause__ is not None else err
    return dict(index=int(index), path=str(path), error=f'{type(cause).__name__}: {cause}')


class ViewDataset(Dataset):
    """Items: ``dict(views=[V, 3, H, W], label, index, path)``; ``index`` is the index in ``dataset``.

    ``indices`` restricts the items to a subset (resume, shards, ``max_samples``) without changing
    any sample's views. ``skip_unreadable``: return a marker item for an image that cannot be read
    (see the module docstring; batch with :func:`collate_views`) instead of raising.
    """

    def __init__(self, dataset: ClassificationDataset, views: Callable, seed: int,
                 indices: Sequence[int] | None = None, skip_unreadable: bool = False):
        self.dataset = dataset
        self.views = views
        self.seed = seed
        self.indices = list(range(len(dataset))) if indices is None else list(indices)
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        datum = self.dataset[index]
        try:
            img = load_rgb(datum.path)
        except (OSError, ValueError) as err:
            if not self.skip_unreadable:
                raise
            return dict(skipped=unreadable_record(index, datum.path, err))
        views = self.views(img, SampleRNG.for_sample(self.seed, index))
        return dict(views=views, label=datum.label, index=index, path=datum.path)


def collate_views(items: Sequence[dict]) -> dict:
    """Collate ``ViewDataset`` items, dropping unreadable-image markers into ``batch['skipped']``.

    ``batch['skipped']`` is a list of ``dict(index, path, error)`` (empty when every image was read). When no
    image of the batch was readable, ``views`` is an empty tensor, ``label``/``index`` empty long tensors and
    ``path`` an empty list.
    """
    good = [it for it in items if 'skipped' not in it]
    skipped = [it['skipped'] for it in items if 'skipped' in it]
    if good:
        batch = default_collate(good)
    else:
        empty = torch.zeros(0, dtype=torch.long)
        batch = dict(views=torch.zeros(0), label=empty, index=empty.clone(), path=[])
    batch['skipped'] = skipped
    return batch
