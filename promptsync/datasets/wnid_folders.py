"""Base of ImageNet subsets stored as ``<wnid>/`` folders and labelled by a fixed index list (a data file).

The label map comes from the index file, never from the folders on disk: a missing class folder is
reported (its label stays reserved), a folder that is not one of the subset's wnids is an error.
"""
from __future__ import annotations

from pathlib import Path

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
        super().__init__(samples, [names_all[i] for i in indices], class_ids=wnids)

    def _find_root(self, root: Path, wnids: set[str]) -> Path:
        candidates = [root] + [root / s for s in self.subdirs]
        for c in candidates:
            if c.is_dir() and any((c / w).is_dir() for w in wnids):
                return c
        layout = '\n'.join(f'  {c}/<wnid>/<images>' for c in candidates)
        raise missing_root_error(self.name, candidates, layout, self.download)
