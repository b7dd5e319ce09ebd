"""Dataset options shared by every dataset: base/new class splits and seeded K-shot subsets.

``subsample='base'|'new'`` is the CoOp/MaPLe base-to-novel protocol: of the ``n`` labels in sorted order, base
is the first ``ceil(n/2)``, new the rest; the kept labels are re-indexed from 0 and the class names and ids are
cut to them. ``num_shots=K`` keeps ``K`` images per class, chosen by :func:`promptsync.datasets.fewshot
.sample_few_shot` (a seeded hash of each image's path relative to the dataset root: deterministic per
``(K, fewshot_seed)``, independent of listing order and mount point). Classes are cut first, then the shots
are drawn; the images chosen per class are the same either way. With ``fewshot_cache=DIR`` the chosen images
are written to ``DIR/<dataset>_<split>_<subsample>_shot_<K>-seed_<S>.json`` and read back from there later
(CoOp's ``split_fewshot/`` cache); the subset is always kept on the dataset as ``dataset.fewshot``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .base import ClassificationDataset, Datum

SUBSAMPLES = ('all', 'base', 'new')


def base_new_range(num_classes: int, subsample: str) -> range:
    """The original labels kept by ``subsample`` (contiguous: base = the first ceil(n/2), new = the rest)."""
    if subsample not in SUBSAMPLES:
        raise ValueError(f"subsample must be one of {SUBSAMPLES}, got {subsample!r}")
    m = math.ceil(num_classes / 2)
    return {'all': range(num_classes), 'base': range(m), 'new': range(m, num_classes)}[subsample]


def apply_subset_options(dataset: ClassificationDataset, subsample: str = 'all', num_shots: int | None = None,
                         fewshot_seed: int = 1, short_classes: str = 'error',
                         fewshot_cache: str | None = None) -> None:
    """Cut ``dataset`` in place to the ``subsample`` classes, then to ``num_shots`` images per class.

    Sets ``dataset.subsample``, ``dataset.label_offset`` (original label = label + offset) and
    ``dataset.fewshot`` (the :class:`~promptsync.datasets.fewshot.FewShotSubset`, or ``None``).
    """
    kept = base_new_range(dataset.num_classes, subsample)
    dataset.subsample, dataset.label_offset, dataset.fewshot = subsample, kept.start, None
    if subsample != 'all':
        lo, hi = kept.start, kept.stop
        dataset.samples = [Datum(d.path, d.label - lo) for d in dataset.samples if lo <= d.label < hi]
        dataset.classnames = dataset.classnames[lo:hi]
        dataset.class_ids = dataset.class_ids[lo:hi] if dataset.class_ids is not None else None
        if not dataset.samples:
            raise ValueError(f'{dataset.name}: no images of the {subsample!r} classes (labels {lo}..{hi - 1})')
    if num_shots is None:
        return
    split = getattr(dataset, 'split', None)
    if split is not None and split == getattr(dataset, 'test_split', 'test'):
        raise ValueError(f"{dataset.name}: num_shots={num_shots} would sample the test split ({split!r}); few-shot "
                         "subsets are drawn from split='train'.")
    subset = _few_shot(dataset, num_shots, fewshot_seed, short_classes, fewshot_cache, split or 'all')
    dataset.fewshot = subset
    dataset.samples = [dataset.samples[i] for i in subset.indices]


def _few_shot(dataset, num_shots, seed, short_classes, cache_dir, split):
    from .fewshot import FewShotSubset, sample_few_shot, sample_key

    if cache_dir is None:
        return sample_few_shot(dataset, num_shots, seed, short_classes, option_prefix='dataset.')
    path = (Path(cache_dir).expanduser()
            / f'{dataset.name}_{split}_{dataset.subsample}_shot_{int(num_shots)}-seed_{int(seed)}.json')
    if not path.is_file():
        subset = sample_few_shot(dataset, num_shots, seed, short_classes, option_prefix='dataset.')
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(subset.to_json(dataset)))
        return subset
    record = json.loads(path.read_text())
    index_of = {sample_key(dataset, i): i for i in range(len(dataset))}
    indices = [index_of.get(p, -1) for p in record['paths']]
    stale = [(p, y) for p, y, i in zip(record['paths'], record['labels'], indices)
             if i < 0 or dataset[i].label != y]
    if stale:
        raise ValueError(f'{dataset.name}: the cached few-shot subset {path} does not fit the dataset: {len(stale)} of '
                         f'{len(indices)} images are missing or labelled differently (first: {stale[0]}). Delete '
                         'the file to draw the subset again.')
    return FewShotSubset(sorted(indices), int(num_shots), int(seed), record.get('short_classes', {}))
