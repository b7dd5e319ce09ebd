"""``ImageFolder``: one sub-folder per class, labels in sorted folder order, class names from data.

Layout::

    ROOT/
      <class folder 0>/img001.jpg ...
      <class folder 1>/...

``classnames`` may be a CoOp-style ``classnames.txt`` (lines ``"<folder> <class name>"``), a list of
names in label order, or ``None`` (folder names, underscores as spaces). ``subsample`` and ``num_shots`` (with
``fewshot_seed``, ``short_classes``, ``fewshot_cache``) cut it to base/new classes and K images per class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from promptsync.registry import DATASETS

from .base import ClassificationDataset, Datum, list_images, missing_root_error
from .resources import read_classnames_file
from .subsets import apply_subset_options


@DATASETS.register_module()
class ImageFolder(ClassificationDataset):

    name = 'ImageFolder'

    def __init__(self, root: str, classnames: str | Sequence[str] | None = None, subsample: str = 'all',
                 num_shots: int | None = None, fewshot_seed: int = 1, short_classes: str = 'error',
                 fewshot_cache: str | None = None):
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise missing_root_error(self.name, [root_path], '  ROOT/<class folder>/<image files>',
                                     'point data.dataset.root at a folder with one sub-folder per class')
        folders = sorted(p.name for p in root_path.iterdir() if p.is_dir())
        if not folders:
            raise FileNotFoundError(f'{root_path} has no class sub-folders; expected ROOT/<class>/<images>')
        names = self._classnames(folders, classnames)
        samples = []
        empty = []
        for label, folder in enumerate(folders):
            files = list_images(root_path / folder)
            if not files:
                empty.append(folder)
            samples.extend(Datum(str(f), label) for f in files)
        if not samples:
            raise FileNotFoundError(f'no image files under {root_path} (extensions: jpg, png, ...)')
        self.root = root_path
        self.empty_classes = empty
        super().__init__(samples, names, class_ids=folders)
        apply_subset_options(self, subsample, num_shots, fewshot_seed, short_classes, fewshot_cache)

    @staticmethod
    def _classnames(folders: list[str], classnames) -> list[str]:
        if classnames is None:
            return [f.replace('_', ' ') for f in folders]
        if isinstance(classnames, (str, Path)):
            mapping = read_classnames_file(classnames)
            missing = [f for f in folders if f not in mapping]
            if missing:
                raise KeyError(f'{classnames} has no class name for folders {missing[:5]} '
                               f'({len(missing)} missing)')
            return [mapping[f] for f in folders]
        names = list(classnames)
        if len(names) != len(folders):
            raise ValueError(f'{len(names)} class names given for {len(folders)} class folders')
        return names
