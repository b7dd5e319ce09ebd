"""Dataset contract: a list of ``Datum(path, label)`` and the class names of the label space."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


@dataclass(frozen=True)
class Datum:
    path: str
    label: int


@dataclass(frozen=True)
class LabelSpace:
    """The classes of a dataset: display names (for prompts) and stable ids (wnids, folder names) if known.

    Ids, when both sides have them, are how two label spaces are matched (e.g. ImageNet-R's 200 classes to
    ImageNet prototypes); names can be ambiguous (ImageNet has two 'missile' and two 'sunglasses').
    """
    names: tuple[str, ...]
    ids: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.ids is not None and len(self.ids) != len(self.names):
            raise ValueError(f'{len(self.ids)} class ids for {len(self.names)} class names')

    def __len__(self) -> int:
        return len(self.names)


class ClassificationDataset:
    """Lists samples; loading and view generation happen in :class:`~.view_dataset.ViewDataset`."""

    name: str = 'dataset'

    def __init__(self, samples: Sequence[Datum], classnames: Sequence[str], class_ids: Sequence[str] | None = None):
        self.samples = list(samples)
        self.classnames = list(classnames)
        self.class_ids = list(class_ids) if class_ids is not None else None
        bad = [d for d in self.samples if not 0 <= d.label < len(self.classnames)]
        if bad:
            raise ValueError(f'{self.name}: {len(bad)} samples have labels outside 0..{len(self.classnames) - 1} '
                             f'(first: {bad[0]})')

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Datum:
        return self.samples[index]

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    @property
    def label_space(self) -> LabelSpace:
        return LabelSpace(tuple(self.classnames), tuple(self.class_ids) if self.class_ids is not None else None)


def list_images(folder: Path, hidden: list[str] | None = None) -> list[str]:
    """Image files under ``folder`` (recursive), sorted for a stable order (``os.walk``: fast on 1M files).

    Hidden files and folders (names starting with '.': ``.ipynb_checkpoints/``, macOS ``._img.jpg``) are skipped,
    not entered; their paths are appended to ``hidden`` when it is given.
    """
    found = []
    for dirpath, dirs, files in os.walk(folder):
        if hidden is not None:
            hidden.extend(os.path.join(dirpath, n) for n in dirs + files if n.startswith('.'))
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        found.extend(os.path.join(dirpath, f) for f in files
                     if not f.startswith('.') and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    return sorted(found)


def missing_root_error(dataset: str, tried: Sequence[Path], layout: str, how_to_get: str) -> FileNotFoundError:
    tried_txt = '\n'.join(f'  - {p}' for p in tried)
    return FileNotFoundError(
        f'{dataset} not found. Looked for:\n{tried_txt}\nExpected layout:\n{layout}\nHow to get it: {how_to_get}\n'
        "Set the data root with the PROMPTSYNC_DATA environment variable, or with --cfg-options "
        "data.dataset.root=/path (proxy_data.dataset.root=/path for a proxy source set).")
