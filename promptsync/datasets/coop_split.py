"""Shared base of the 10 cross-dataset targets: CoOp/Dassl folders and CoOp's fixed ``split_zhou_<Name>.json``.

A split json holds ``{"train": [[impath_rel, label, classname], ...], "val": [...], "test": [...]}``; each
``impath_rel`` is relative to the dataset's image folder. A subclass names its folders, split file, image folder,
class count and download instructions; the class names come from ``data/<key>/classnames.txt`` (CoOp's names,
underscores as spaces) and the json's own names (the class ids) must agree with them label by label.

Where the data may be (``root`` is the data root or the dataset folder itself)::

    DATA/<CoOp folder>/<split json> + DATA/<CoOp folder>/<image folder>/<impath_rel>      (CoOp / Dassl)
    DATA/<TPT folder>/<impath_rel> or DATA/<TPT folder>/<image folder>/<impath_rel>,
        with the split json in DATA/<TPT folder>/ or in DATA/data_splits/                  (TPT)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .base import ClassificationDataset, Datum, missing_root_error
from .resources import read_name_list
from .subsets import apply_subset_options

SPLITS = ('train', 'val', 'test')
COOP_GUIDE = 'https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md'
PROBE = 32          # split entries tried per candidate image folder
LISTED = 5          # missing files / bad labels quoted in an error


def norm_name(name: str) -> str:
    """Names compare without case, underscores or repeated spaces ('american_bulldog' == 'American Bulldog')."""
    return ' '.join(str(name).replace('_', ' ').split()).casefold()


class CoOpSplitDataset(ClassificationDataset):
    """One split (``'test'`` by default) of a dataset stored in CoOp's layout with its fixed split file."""

    key = ''                    # data/<key>/classnames.txt, templates/<key>.txt, configs/_base_/datasets/<key>.py
    dirnames: tuple[str, ...] = ()  # dataset folders under the data root: CoOp's, then TPT's
    image_dir = ''              # the folder the split's paths are relative to ('' = the dataset folder)
    split_file = ''             # CoOp's split json
    split_url = ''              # where CoOp publishes it
    download = ''               # how to get the images
    num_known_classes = 0
    aliases: dict[str, str] = {}  # other spellings of a class in split files: {name in the file: shipped name}

    def __init__(self, root: str, split: str = 'test', subsample: str = 'all', num_shots: int | None = None,
                 fewshot_seed: int = 1, short_classes: str = 'error', fewshot_cache: str | None = None):
        if split not in SPLITS:
            raise ValueError(f'{self.name} split must be one of {SPLITS}, got {split!r}')
        self.split = split
        names = list(read_name_list(f'{self.key}/classnames.txt'))
        if len(names) != self.num_known_classes:
            raise RuntimeError(f'promptsync data file {self.key}/classnames.txt lists {len(names)} classes, '
                               f'{self.name} has {self.num_known_classes} (broken install?)')
        self.dataset_dir, self.class_source = self._locate(Path(root).expanduser())
        self.split_path = self.class_source  # the file listing the split's images (aircraft: another file)
        entries, raw_names = self._read_split(self.class_source)
        self._check_classes(raw_names, names)
        if not entries:
            raise ValueError(f'{self.name}: {self.split_path} lists no images for split {self.split!r}')
        self.root = self._image_root(entries)
        samples = [Datum(os.path.join(self.root, rel), label) for rel, label in entries]
        super().__init__(samples, names, class_ids=[raw_names[j] for j in range(len(names))])
        apply_subset_options(self, subsample, num_shots, fewshot_seed, short_classes, fewshot_cache)

    # ------------------------------------------------------------------ where the files are
    def _split_candidates(self, folder: Path) -> list[Path]:
        """Where a dataset folder's split file may be: inside it (CoOp) or in ``data_splits/`` next to it (TPT)."""
        return [folder / self.split_file, folder.parent / 'data_splits' / self.split_file]

    def _split_help(self, folder: Path) -> str:
        return (f'download {self.split_file} from {self.split_url} (CoOp, {COOP_GUIDE}) and put it in {folder}/ '
                f'(CoOp layout) or in {folder.parent / "data_splits"}/ (TPT layout)')

    def _source_help(self) -> str:
        return f"CoOp's {self.split_file} ({self.split_url})"

    def _layout(self, folders: list[Path]) -> str:
        image = f'{self.image_dir}/' if self.image_dir else ''
        return '\n'.join(f'  {f}/{image}<impath_rel>, split file {f}/{self.split_file} or '
                         f'{f.parent}/data_splits/{self.split_file}' for f in folders[:-1])

    def _locate(self, root: Path) -> tuple[Path, Path]:
        folders = list(dict.fromkeys([root / d for d in self.dirnames] + [root]))
        for folder in filter(Path.is_dir, folders):
            for path in self._split_candidates(folder):
                if path.is_file():
                    return folder, path
        found = [f for f in folders[:-1] if f.is_dir()]
        if not found and self.image_dir and (root / self.image_dir).is_dir():
            found = [root]
        if found:
            tried = '\n'.join(f'  - {p}' for p in self._split_candidates(found[0]))
            raise FileNotFoundError(f'{self.name}: found the dataset folder {found[0]} but not its split file. '
                                    f'Looked for:\n{tried}\nTo fix: {self._split_help(found[0])}.')
        raise missing_root_error(self.name, folders, self._layout(folders), self._how_to_get(folders[0]))

    def _how_to_get(self, folder: Path) -> str:
        return f'{self.download}; then {self._split_help(folder)}'

    # ------------------------------------------------------------------ the split file
    def _read_split(self, path: Path) -> tuple[list[tuple[str, int]], dict[int, str]]:
        """(``(impath_rel, label)`` of ``self.split``, ``{label: class name}`` over every split)."""
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f'{self.name}: {path} is not a valid json file ({err}); download {self.split_file} '
                             f'again from {self.split_url}') from None
        if not isinstance(data, dict) or any(not isinstance(data.get(s), list) for s in SPLITS):
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f'{self.name}: {path} is not in CoOp\'s split format {{"train": [[impath, label, '
                             f'classname], ...], "val": [...], "test": [...]}} (found {keys}); download '
                             f'{self.split_file} from {self.split_url}')
        try:
            pairs = {(int(label), str(name)) for s in SPLITS for _, label, name in data[s]}
            entries = [(str(rel), int(label)) for rel, label, _ in data[self.split]]
        except (TypeError, ValueError) as err:
            raise ValueError(f'{self.name}: {path}: every entry must be [image path, integer label, class name] '
                             f'({err})') from None
        raw: dict[int, str] = {}
        for label, name in sorted(pairs):
            if label in raw and norm_name(raw[label]) != norm_name(name):
                raise ValueError(f'{self.name}: {path} gives label {label} two class names, {raw[label]!r} and '
                                 f'{name!r}; download {self.split_file} again from {self.split_url}')
            raw.setdefault(label, name)
        return entries, raw

    def _check_classes(self, raw: dict[int, str], names: list[str]) -> None:
        source = self.class_source
        if len(raw) != len(names):
            raise ValueError(f'{self.name}: {source} has {len(raw)} classes, {self.name} has {len(names)}. '
                             f'Is this the right file? Use {self._source_help()}.')
        outside = sorted(j for j in raw if not 0 <= j < len(names))
        if outside:
            raise ValueError(f'{self.name}: {source} has labels outside 0..{len(names) - 1}: {outside[:LISTED]}. '
                             f'Use {self._source_help()}.')
        differ = [j for j in range(len(names))
                  if norm_name(names[j]) not in (norm_name(raw[j]), norm_name(self.aliases.get(raw[j], '')))]
        if differ:
            j = differ[0]
            raise ValueError(
                f'{self.name}: label {j} is {raw[j]!r} in {source} but {names[j]!r} in promptsync\'s class list '
                f'(promptsync/datasets/data/{self.key}/classnames.txt); {len(differ)} of {len(names)} labels '
                f'differ. Labels and names must be CoOp\'s: use {self._source_help()}.')

    # ------------------------------------------------------------------ the images
    def _image_root(self, entries: list[tuple[str, int]]) -> Path:
        """The folder the split's paths resolve in: the image folder, else the dataset folder; all must exist."""
        folders = list(dict.fromkeys([self.dataset_dir / self.image_dir, self.dataset_dir]))
        probe = [rel for rel, _ in entries[:PROBE]]
        hits = [sum(os.path.isfile(os.path.join(f, rel)) for rel in probe) for f in folders]
        folder = folders[hits.index(max(hits))]
        missing = [rel for rel, _ in entries if not os.path.isfile(os.path.join(folder, rel))]
        if missing:
            raise FileNotFoundError(
                f'{self.name}: {len(missing)} of {len(entries)} images of split {self.split!r} listed in '
                f'{self.split_path} are missing under {folder} (first: {missing[:LISTED]}). The paths are relative '
                f'to {" or ".join(str(f) for f in folders)}. To fix: {self.download}.')
        return folder
