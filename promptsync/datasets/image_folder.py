"""``ImageFolder``: one sub-folder per class, labels in sorted folder order, class names from data.

Layout::

    ROOT/
      <class folder 0>/img001.jpg ...
      <class folder 1>/...

Hidden entries (names starting with '.', e.g. ``.ipynb_checkpoints/``) are no classes and no images; their
number is ``ignored_hidden``. A class folder without images is an error, or with ``empty_classes='drop'`` it
leaves the label space (``dropped_classes``). ``classnames`` may be a CoOp-style ``classnames.txt`` (lines
``"<folder> <class name>"``, exactly one per folder), a list of names in label order, or ``None`` (folder names,
underscores as spaces). ``class_mapping`` lists label, folder, name and image count per class. ``subsample`` and
``num_shots`` (with ``fewshot_seed``, ``short_classes``, ``fewshot_cache``) cut it to base/new classes and K
images per class.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from promptsync.errors import ConfigError, ResourceError
from promptsync.registry import DATASETS
from promptsync.utils.logging import get_logger

from .base import IMAGE_EXTENSIONS, ClassificationDataset, Datum, list_images, missing_root_error
from .coop_split import norm_name
from .resources import read_classnames_file
from .subsets import apply_subset_options

logger = get_logger('datasets')

EMPTY_CLASSES = ('error', 'drop')
SHOWN = 5  # folders / labels quoted in a message


@DATASETS.register_module()
class ImageFolder(ClassificationDataset):

    name = 'ImageFolder'

    def __init__(self, root: str, classnames: str | Sequence[str] | None = None, subsample: str = 'all',
                 num_shots: int | None = None, fewshot_seed: int = 1, short_classes: str = 'error',
                 fewshot_cache: str | None = None, empty_classes: str = 'error'):
        if empty_classes not in EMPTY_CLASSES:
            raise ConfigError(f'empty_classes must be one of {EMPTY_CLASSES}, got {empty_classes!r}',
                              where='dataset.empty_classes',
                              fix="'error' refuses class folders without images, 'drop' leaves them out")
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise missing_root_error(self.name, [root_path], '  ROOT/<class folder>/<image files>',
                                     'point data.dataset.root at a folder with one sub-folder per class')
        subdirs = [p.name for p in root_path.iterdir() if p.is_dir()]
        hidden = [str(root_path / d) for d in subdirs if d.startswith('.')]  # list_images adds the rest
        folders = sorted(d for d in subdirs if not d.startswith('.'))
        if not folders:
            raise ResourceError(f'{root_path} has no class sub-folders', where=str(root_path),
                                fix='use the layout ROOT/<class folder>/<images>')
        files_of = {f: list_images(root_path / f, hidden) for f in folders}
        empty = [f for f in folders if not files_of[f]]
        if len(empty) == len(folders):
            raise ResourceError(f'no image files under {root_path} (extensions: {", ".join(IMAGE_EXTENSIONS)})',
                                where=str(root_path), fix='point data.dataset.root at the folder of class folders')
        if empty and empty_classes == 'error':
            raise ResourceError(
                f'{len(empty)} of {len(folders)} class folders have no images: {empty[:SHOWN]}; each would still '
                'take a label (a class never seen in the data)', where=str(root_path),
                fix="remove the empty folders, or pass empty_classes='drop' (e.g. --cfg-options "
                    "data.dataset.empty_classes=drop) to leave them out of the label space")
        if empty:
            logger.warning('%s: dropped %d class folders without images from the label space: %s',
                           self.name, len(empty), empty[:SHOWN])
            folders = [f for f in folders if files_of[f]]
        self.root = root_path
        self.dropped_classes = empty
        self.ignored_hidden = len(hidden)
        names = self._classnames(folders, classnames, empty)
        samples = [Datum(p, label) for label, f in enumerate(folders) for p in files_of[f]]
        super().__init__(samples, names, class_ids=folders)
        apply_subset_options(self, subsample, num_shots, fewshot_seed, short_classes, fewshot_cache)

    @property
    def class_mapping(self) -> list[dict]:
        """``[dict(label=i, folder=..., name=..., images=n), ...]`` in label order (after any subset cut)."""
        counts = Counter(d.label for d in self.samples)
        return [dict(label=i, folder=f, name=n, images=counts[i])
                for i, (f, n) in enumerate(zip(self.class_ids, self.classnames))]

    @staticmethod
    def _classnames(folders: list[str], classnames, dropped: list[str]) -> list[str]:
        derived = [f.replace('_', ' ') for f in folders]
        if classnames is None:
            return derived
        if isinstance(classnames, (str, Path)):
            return _names_from_file(folders, classnames, dropped)
        names = list(classnames)
        if len(names) != len(folders):
            after = f' (after dropping the empty folders {dropped[:SHOWN]})' if dropped else ''
            raise ConfigError(f'{len(names)} class names given for {len(folders)} class folders{after}',
                              where='dataset.classnames',
                              fix=f'give one name per class folder, in sorted folder order: {folders[:SHOWN]}...')
        given, expected = [norm_name(n) for n in names], [norm_name(n) for n in derived]
        if given != expected and sorted(given) == sorted(expected):
            off = [i for i in range(len(names)) if given[i] != expected[i]]
            shown = '; '.join(f'label {i}: folder {folders[i]!r}, given {names[i]!r}' for i in off[:SHOWN])
            raise ConfigError(f'classnames are the folder names in another order: {len(off)} of {len(names)} '
                              f'labels would get the name of another class ({shown})', where='dataset.classnames',
                              fix='labels follow the sorted folder order; list the names in that order, or leave '
                                  'classnames unset to use the folder names')
        return names


def _names_from_file(folders: list[str], path, dropped: list[str]) -> list[str]:
    mapping = read_classnames_file(path)
    missing = [f for f in folders if f not in mapping]
    unknown = [f for f in mapping if f not in folders and f not in dropped]
    problems = []
    if missing:
        problems.append(f'no class name for {len(missing)} folders {missing[:SHOWN]}')
    if unknown:
        problems.append(f'{len(unknown)} lines name folders that do not exist: {unknown[:SHOWN]}')
    if problems:
        raise ConfigError(f'the class names file does not match the class folders: {"; ".join(problems)}',
                          where=str(path),
                          fix='write exactly one line "<folder> <class name>" per class folder, the folder spelled '
                              'as on disk; is it the file of this data?')
    return [mapping[f] for f in folders]
