"""Base of ImageNet subsets stored as one folder per class and labelled by a fixed index list (a data file).

The label map comes from the index file (or all 1000 ImageNet classes when there is none), never from the
folders on disk: a missing class folder is reported (its label stays reserved), a folder that is not one of
the subset's classes is an error. Class ids are the wnids, class names CLIP's ImageNet names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from promptsync.utils.logging import get_logger

from .base import ClassificationDataset, Datum, list_images, missing_root_error
from .resources import imagenet_wnids_and_names, read_indices
from .subsets import apply_subset_options

logger = get_logger('datasets')


class WnidSubsetDataset(ClassificationDataset):
    """An ImageNet subset stored as ``<wnid>/`` folders, labelled by a fixed index list (a data file).

    Subclasses set ``subdirs`` (layouts under the data root), ``download`` (how to get the data) and
    ``indices_file`` (``None``: all 1000 ImageNet classes in ImageNet label order).

    ``subsample`` ('all', 'base', 'new') and ``num_shots``/``fewshot_seed``/``short_classes``/``fewshot_cache``
    cut the dataset to the base/new classes and to K images per class (:mod:`.subsets`).
    """

    indices_file: str | None = None
    subdirs: tuple[str, ...] = ()
    download: str = ''
    folder_pattern: str = '<wnid>'
    folder_rule: str = 'class folders are named by their ImageNet wnid'

    def __init__(self, root: str, subsample: str = 'all', num_shots: int | None = None, fewshot_seed: int = 1,
                 short_classes: str = 'error', fewshot_cache: str | None = None):
        wnids_all, names_all = imagenet_wnids_and_names()
        indices = read_indices(self.indices_file) if self.indices_file else range(len(wnids_all))
        wnids = [wnids_all[i] for i in indices]
        folders = self._folder_names(indices, wnids)
        label_of = {f: j for j, f in enumerate(folders)}
        folder = self._find_root(Path(root).expanduser(), set(folders))
        present = {p.name for p in folder.iterdir() if p.is_dir()}
        unexpected = sorted(present - label_of.keys())
        if unexpected:
            raise ValueError(f'{self.name}: {folder} has folders that are not {self.name} classes: {unexpected[:5]} '
                             f'({len(unexpected)} in all; {self.folder_rule}). Is this the right dataset?')
        missing = [f for f in folders if f not in present]
        if missing:
            logger.warning('%s: %d of %d class folders are missing under %s (e.g. %s); their labels stay reserved',
                           self.name, len(missing), len(folders), folder, missing[0])
        samples = [Datum(str(p), label_of[f]) for f in folders if f in present for p in list_images(folder / f)]
        if not samples:
            raise FileNotFoundError(f'{self.name}: no images under {folder}')
        self.root = folder
        self.missing_classes = missing
        super().__init__(samples, [names_all[i] for i in indices], class_ids=wnids)
        apply_subset_options(self, subsample, num_shots, fewshot_seed, short_classes, fewshot_cache)

    def _folder_names(self, indices: Sequence[int], wnids: Sequence[str]) -> list[str]:
        """The folder name of each label (default: its wnid)."""
        return list(wnids)

    def _candidates(self, root: Path) -> list[Path]:
        """Folders that may hold the class folders: ``root`` itself, then each layout under it."""
        return [root] + [root / s for s in self.subdirs]

    def _find_root(self, root: Path, folders: set[str]) -> Path:
        candidates = self._candidates(root)
        for c in candidates:
            if c.is_dir() and any((c / f).is_dir() for f in folders):
                return c
        layout = '\n'.join(f'  {c}/{self.folder_pattern}/<images>' for c in candidates)
        raise missing_root_error(self.name, candidates, layout, self.download)
