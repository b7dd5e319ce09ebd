"""``ViewDataset``: load sample ``i`` and generate its views with randomness derived from ``(seed, i)``."""
from __future__ import annotations

from typing import Callable, Sequence

from torch.utils.data import Dataset

from promptsync.utils.seeding import SampleRNG

from .base import ClassificationDataset
from .loading import load_rgb


class ViewDataset(Dataset):
    """Items: ``dict(views=[V, 3, H, W], label, index, path)``; ``index`` is the index in ``dataset``.

    ``indices`` restricts the items to a subset (resume, shards, ``max_samples``) without changing
    any sample's views.
    """

    def __init__(self, dataset: ClassificationDataset, views: Callable, seed: int,
                 indices: Sequence[int] | None = None):
        self.dataset = dataset
        self.views = views
        self.seed = seed
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        datum = self.dataset[index]
        img = load_rgb(datum.path)
        views = self.views(img, SampleRNG.for_sample(self.seed, index))
        return dict(views=views, label=datum.label, index=index, path=datum.path)
