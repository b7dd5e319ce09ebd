"""Label-map consistency of a built dataset, from what the dataset object already knows (no file is opened).

``tools/test.py`` runs :func:`check_label_map` on the dataset it is about to evaluate (``--skip-data-check`` turns
it off); the dataset doctor (``tools/check_data.py``) reports the same problems. Checked: the label space (class
names, unique ids), every label within ``0..n-1``, and the invariants of the known datasets: ImageNet-A/R labels
follow their mask file (``data/imagenet/imagenet_{a,r}_indices.txt``), ImageNet/Sketch all 1000 classes in wnid
order, ImageNetV2 the *integer* folder names (never the sorted folder order ``0, 1, 10, 100, ...``), each image
sits in the folder of its label, and the 10 CoOp targets have the shipped class list.
"""
from __future__ import annotations

import os
from collections import Counter

from promptsync.utils.logging import get_logger

from .base import ClassificationDataset
from .coop_split import CoOpSplitDataset, norm_name
from .image_folder import ImageFolder
from .imagenet_v2 import ImageNetV2
from .resources import imagenet_wnids_and_names, read_indices, read_name_list
from .subsets import base_new_range
from .wnid_folders import WnidSubsetDataset

LISTED = 3  # examples quoted per problem
logger = get_logger('datasets')


class LabelMapError(ValueError):
    """The dataset's labels, class names or class ids do not agree: evaluating on it would score wrong labels."""


def label_map_problems(dataset: ClassificationDataset) -> list[str]:
    """Human-readable problems of the dataset's label map (empty when consistent)."""
    n, ids = dataset.num_classes, dataset.class_ids
    problems = []
    if n == 0:
        problems.append('the label space has no classes')
    if ids is not None and len(ids) != n:
        problems.append(f'{len(ids)} class ids for {n} class names')
    dup = [i for i, c in Counter(ids or ()).items() if c > 1]
    if dup:
        problems.append(f'{len(dup)} class ids appear more than once (first: {dup[:LISTED]})')
    bad = [d for d in dataset.samples if not (isinstance(d.label, int) and 0 <= d.label < n)]
    if bad:
        problems.append(f'{len(bad)} images have labels outside 0..{n - 1} (first: '
                        f'{[(d.path, d.label) for d in bad[:LISTED]]})')
    if not problems:  # the known invariants assume a well-formed label space
        problems += _known_invariants(dataset)
    return problems


def check_label_map(dataset: ClassificationDataset, enabled: bool = True) -> None:
    """Raise :class:`LabelMapError` naming every problem; ``enabled=False`` only logs that the check was skipped."""
    name = getattr(dataset, 'name', type(dataset).__name__)
    if not enabled:
        logger.warning('%s: label-map check skipped (--skip-data-check)', name)
        return
    problems = label_map_problems(dataset)
    if problems:
        listed = '\n'.join(f'  - {p}' for p in problems)
        raise LabelMapError(
            f'{name}: the label map is inconsistent; refusing to evaluate on it (scores would be wrong):\n{listed}\n'
            'Check the data with `python tools/check_data.py` (docs/datasets.md, "Check your data"); to run anyway, '
            'pass --skip-data-check to tools/test.py.')
    logger.info('%s: label map consistent (%d classes, %d images)', name, dataset.num_classes, len(dataset))


def _kept(dataset, full: int) -> range:
    return base_new_range(full, getattr(dataset, 'subsample', 'all'))


def _differs(what: str, got, expected, source: str) -> list[str]:
    got, expected = list(got or ()), list(expected)
    if got == expected:
        return []
    if len(got) != len(expected):
        return [f'{len(got)} {what}, {source} gives {len(expected)}']
    j = next(k for k, (a, b) in enumerate(zip(got, expected)) if a != b)
    wrong = sum(a != b for a, b in zip(got, expected))
    return [f'{wrong} of {len(got)} {what} differ from {source} (first: label {j} is {got[j]!r}, expected '
            f'{expected[j]!r})']


def _folder_of(d, root=None) -> str:
    """The class folder an image sits in: its parent folder, or its first folder below ``root``."""
    if root is None:
        return os.path.basename(os.path.dirname(d.path))
    return os.path.relpath(d.path, root).split(os.sep)[0]


def _folder_mismatch(dataset, expected: list[str], rule: str, root=None) -> list[str]:
    if len(expected) != dataset.num_classes:  # already reported as a class count problem
        return []
    wrong = [(d, f) for d in dataset.samples if (f := _folder_of(d, root)) != expected[d.label]]
    if not wrong:
        return []
    first = '; '.join(f'{d.path} (folder {f!r}) has label {d.label}, the label of folder {expected[d.label]!r}'
                      for d, f in wrong[:LISTED])
    return [f'{len(wrong)} of {len(dataset)} images are not labelled by their class folder ({rule}): {first}']


def _known_invariants(ds: ClassificationDataset) -> list[str]:
    if isinstance(ds, WnidSubsetDataset):
        wnids, names = imagenet_wnids_and_names()
        indices = read_indices(ds.indices_file) if ds.indices_file else range(len(wnids))
        kept = _kept(ds, len(indices))
        source = f'promptsync/datasets/data/{ds.indices_file}' if ds.indices_file else 'the 1000 ImageNet classes'
        v2 = isinstance(ds, ImageNetV2)
        folders = [str(i) if v2 else wnids[i] for i in indices]  # written out here, not asked of the dataset
        rule = ('ImageNetV2 labels are the integer folder names 0..999, not the sorted folder order 0, 1, 10, 100, ...'
                if v2 else f'label j is the j-th wnid of {source}')
        return (_differs('class ids', ds.class_ids, [wnids[indices[j]] for j in kept], source)
                + _differs('class names', ds.classnames, [names[indices[j]] for j in kept], source)
                + _folder_mismatch(ds, folders[kept.start:kept.stop], rule))
    if isinstance(ds, CoOpSplitDataset):
        names = read_name_list(f'{ds.key}/classnames.txt')
        kept = _kept(ds, len(names))
        source = f'promptsync/datasets/data/{ds.key}/classnames.txt'
        problems = _differs('class names', ds.classnames, names[kept.start:kept.stop], source)
        ids = ds.class_ids or []
        off = [j for j, (i, n) in enumerate(zip(ids, ds.classnames))
               if norm_name(n) not in (norm_name(i), norm_name(ds.aliases.get(i, '')))]
        if off:
            problems.append(f'{len(off)} class ids do not name their class (first: label {off[0]} has id '
                            f'{ids[off[0]]!r} and name {ds.classnames[off[0]]!r})')
        return problems
    if isinstance(ds, ImageFolder) and ds.class_ids is not None:
        return _folder_mismatch(ds, ds.class_ids, 'labels follow the sorted class folders', ds.root)
    return []
