"""ImageNet-R (Hendrycks et al., 2021): 200 ImageNet classes as renditions.

Label ``j`` is the ``j``-th of the 200 wnids in sorted order, which is the ``j``-th index of
``data/imagenet/imagenet_r_indices.txt`` in ImageNet's label order; class names are CLIP's ImageNet
names at those indices. The label map never depends on which folders happen to be on disk.

Accepted layouts (``root`` may be any of these folders or the data root above them)::

    DATA/imagenet-rendition/imagenet-r/<wnid>/*.jpg   (CoOp / PromptAlign)
    DATA/imagenet-r/<wnid>/*.jpg                      (TPT)
"""
from __future__ import annotations

from pathlib import Path

from promptsync.registry import DATASETS
from promptsync.utils.logging import get_logger

from .base import ClassificationDataset, Datum, list_images, missing_root_error
from .resources import imagenet_wnids_and_names, read_indices

logger = get_logger('datasets')


class WnidSubsetDataset(ClassificationDataset):
    """An ImageNet subset stored as ``<wnid>/`` folders, labelled by a fixed index list (a data file)."""

    indices_file: str = ''
    subdirs: tuple[str, ...] = ()
    download: str = ''

    def __init__(self, root: str):
        wnids_all, names_all = imagenet_wnids_and_names()
        indices = read_indices(self.indices_file)
        wnids = [wnids_all[i] for i in indices]
        label_of = {w: j for j, w in enumerate(wnids)}
        folder = self._find_root(Path(root).expanduser(), set(wnids))
        present = sorted(p.name for p in folder.iterdir() if p.is_dir())
        unexpected = [p for p in present if p not in label_of]
        if unexpected:
            raise ValueError(f'{self.name}: {folder} has folders that are not {self.name} classes: {unexpected[:5]} '
                             f'({len(unexpected)} in all). Is this the right dataset?')
        missing = [w for w in wnids if w not in present]
        if missing:
            logger.warning('%s: %d of %d class folders are missing under %s (e.g. %s); their labels stay reserved',
                           self.name, len(missing), len(wnids), folder, missing[0])
        samples = [Datum(str(f), label_of[w]) for w in present for f in list_images(folder / w)]
        if not samples:
            raise FileNotFoundError(f'{self.name}: no images under {folder}')
        self.root = folder
        self.missing_classes = missing
        super().__init__(samples, [names_all[i] for i in indices])

    def _find_root(self, root: Path, wnids: set[str]) -> Path:
        candidates = [root] + [root / s for s in self.subdirs]
        for c in candidates:
            if c.is_dir() and any((c / w).is_dir() for w in wnids):
                return c
        layout = '\n'.join(f'  {c}/<wnid>/<images>' for c in candidates)
        raise missing_root_error(self.name, candidates, layout, self.download)


@DATASETS.register_module()
class ImageNetR(WnidSubsetDataset):

    name = 'ImageNet-R'
    indices_file = 'imagenet/imagenet_r_indices.txt'
    subdirs = ('imagenet-rendition/imagenet-r', 'imagenet-r')
    download = ('download https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar and extract it so that '
                'DATA/imagenet-rendition/imagenet-r/n01443537/... exists')
