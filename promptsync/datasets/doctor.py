"""The dataset doctor: is each benchmark dataset where promptsync looks for it, complete, labelled and readable?

``tools/check_data.py`` runs :func:`check_data` and prints :func:`format_report` (docs/datasets.md, "Check your
data"). Each dataset is built exactly as a config builds it (``data/test_sets.json``: type, options, the size of
the full test set) and gets one status:

- ``found``: it builds, its label map is consistent (:mod:`.doctor_labels`) and the sampled images decode.
  Warnings (fewer images or classes than the full test set: a subset may be intended) do not change it;
- ``missing``: none of its accepted folders exists under the data root;
- ``malformed``: something is there but wrong: no split file, listed images missing, foreign class folders, an
  inconsistent label map, unreadable images.

Errors are the dataset's own messages; each comes with a fix (what to download and where to put it).

Exit code (:func:`verdict`): 1 when a dataset is malformed, when a dataset asked for (by its key or its suite,
``dg`` / ``cross_dataset``) is missing, or when no dataset at all is found; else 0. ``all`` surveys every
dataset without asking for any: missing ones are listed, not failed.
"""
from __future__ import annotations

import json
import logging
import random
import textwrap
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from tabulate import tabulate

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset
from .doctor_labels import label_map_problems
from .loading import load_rgb
from .resources import data_file
from .wnid_folders import WnidSubsetDataset

DEFAULT_IMAGES = 300  # images decoded per dataset, spread over its classes
LISTED = 5
SUITES = {'dg': ('imagenet', 'imagenet_v2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r'),
          'cross_dataset': ('caltech101', 'oxford_pets', 'stanford_cars', 'flowers102', 'food101', 'fgvc_aircraft',
                            'sun397', 'dtd', 'eurosat', 'ucf101')}
REINSTALL = ('the label map comes from promptsync/datasets/data/: reinstall promptsync (pip install -e .) or restore '
             'those files with git checkout')


@lru_cache(maxsize=None)
def expectations() -> dict:
    """``data/test_sets.json``: ``datasets``: key -> type, options, images (the full set), classes, source."""
    return json.loads(data_file('test_sets.json').read_text())


@dataclass
class DatasetReport:
    key: str
    name: str
    required: bool                  # asked for by key or suite: missing is an error
    expected_images: int
    expected_classes: int
    status: str = 'found'           # found | missing | malformed
    root: str | None = None         # the folder the images were found in
    split_file: str | None = None
    images: int | None = None
    classes: int | None = None      # the label space
    classes_with_images: int | None = None
    checked: int = 0                # images decoded
    unreadable: list = field(default_factory=list)  # dict(path, error)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    fixes: list = field(default_factory=list)

    def problem(self, kind: str, text: str, fix: str) -> None:
        getattr(self, kind).append(text)
        self.fixes = [f for f in self.fixes if f not in fix]  # a fix that says more replaces one it contains
        if not any(fix in f for f in self.fixes):
            self.fixes.append(fix)


def select(spec: str, imagenet_train: bool = False) -> dict[str, bool]:
    """``{key: required}`` for ``--suite``: comma-separated suites (``dg``, ``cross_dataset``, ``all``) and keys."""
    known = expectations()['datasets']
    chosen: dict[str, bool] = {}
    for item in filter(None, (s.strip() for s in spec.split(','))):
        if item not in known and item not in SUITES and item != 'all':
            raise ValueError(f'unknown dataset or suite {item!r}; choose from all, {", ".join(SUITES)} or the keys '
                             f'{", ".join(known)}')
        keys = SUITES['dg'] + SUITES['cross_dataset'] if item == 'all' else SUITES.get(item, (item,))
        for key in keys:
            chosen[key] = chosen.get(key, False) or item != 'all'
    if imagenet_train:
        chosen['imagenet_train'] = True
    return {k: chosen[k] for k in known if k in chosen}


def how_to_get(key: str, data_root: str | Path) -> str:
    """The dataset's own download hint, with the real data root for ``DATA/``."""
    cls, root = DATASETS.get(expectations()['datasets'][key]['type']), Path(data_root).expanduser()
    text = (cls.__new__(cls)._how_to_get(root / cls.dirnames[0]) if issubclass(cls, CoOpSplitDataset)
            else cls.download)
    return text.replace('DATA/', f'{root}/')


def diagnose(key: str, data_root: str | Path, required: bool = True, images: int | None = DEFAULT_IMAGES,
             seed: int = 0) -> DatasetReport:
    """Build dataset ``key`` under ``data_root``, check its label map and counts, decode ``images`` (None: all)."""
    exp, root = expectations()['datasets'][key], Path(data_root).expanduser()
    cls, fix = DATASETS.get(exp['type']), how_to_get(key, root)
    rep = DatasetReport(key, cls.name, required, exp['images'], exp['classes'])
    try:
        with _quiet():
            ds = cls(root=str(root), **exp['options'])
    except (OSError, ValueError) as err:
        rep.status = 'missing' if _is_missing(cls, exp['options'], root, err) else 'malformed'
        # 'X not found. Looked for: ... Expected layout: ...'; its 'How to get it' is the fix, with the real root
        rep.problem('errors', str(err).split('\nHow to get it:')[0], fix)
        return rep
    present = {d.label for d in ds.samples}
    rep.root, rep.split_file = str(ds.root), str(getattr(ds, 'split_path', '')) or None
    rep.images, rep.classes, rep.classes_with_images = len(ds), ds.num_classes, len(present)
    for problem in label_map_problems(ds):
        rep.problem('errors', f'label map: {problem}', REINSTALL)
    if ds.num_classes != exp['classes']:
        rep.problem('errors', f'{ds.num_classes} classes, {cls.name} has {exp["classes"]}', REINSTALL)
    absent = [j for j in range(ds.num_classes) if j not in present]
    if absent:
        where = (f'class folders are missing under {ds.root} (first: {ds.missing_classes[:LISTED]})'
                 if isinstance(ds, WnidSubsetDataset) else f'classes have no image in {rep.split_file}')
        rep.problem('warnings', f'{len(absent)} of {ds.num_classes} {where}; their labels stay in the label space, '
                                'no image of theirs is evaluated', fix)
    if len(ds) != exp['images']:
        rep.problem('warnings', f'{len(ds):,} images; the full set has {exp["images"]:,} ({exp["source"]}). Fine for '
                                'a deliberate subset, else the data is incomplete', fix)
    _decode(ds, rep, images, seed, fix)
    rep.status = 'malformed' if rep.errors else 'found'
    return rep


def _decode(ds, rep: DatasetReport, images: int | None, seed: int, fix: str) -> None:
    for i in spread(ds.samples, images, seed):
        rep.checked += 1
        try:
            load_rgb(ds.samples[i].path)
        except OSError as err:
            rep.unreadable.append(dict(path=ds.samples[i].path, error=str(err.__cause__ or err)))
    if rep.unreadable:
        first = '; '.join(f'{u["path"]} ({u["error"]})' for u in rep.unreadable[:LISTED])
        rep.problem('errors', f'{len(rep.unreadable)} of {rep.checked} checked images cannot be read: {first}',
                    f'replace the unreadable files (tools/test.py would skip and count them), e.g. extract them '
                    f'again: {fix}')


def spread(samples, n: int | None, seed: int = 0) -> list[int]:
    """``n`` sample indices (None: all) drawn round-robin over the classes, in a seeded order, sorted."""
    if n is None or n >= len(samples):
        return list(range(len(samples)))
    by_class: dict[int, list[int]] = {}
    for i, d in enumerate(samples):
        by_class.setdefault(d.label, []).append(i)
    rng = random.Random(seed)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_class.items())]
    rng.shuffle(queues)
    order = [q[r] for r in range(max(map(len, queues))) for q in queues if r < len(q)]
    return sorted(order[:n])


def _is_missing(cls, options: dict, root: Path, err: Exception) -> bool:
    """'X not found' (``missing_root_error``) and none of the dataset's own folders exists under ``root``."""
    if not (isinstance(err, FileNotFoundError) and str(err).startswith(f'{cls.name} not found.')):
        return False
    if issubclass(cls, WnidSubsetDataset):  # an existing but empty imagenet-a/ is malformed, not missing
        bare = cls.__new__(cls)
        vars(bare).update(options)
        return not any(c.is_dir() for c in bare._candidates(root) if c != root)
    return True


@contextmanager
def _quiet():
    """The doctor reports missing class folders itself: silence the datasets' log warnings meanwhile."""
    log = logging.getLogger('promptsync.datasets')
    before, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = before


def verdict(reports: list[DatasetReport]) -> tuple[int, str]:
    malformed = [r.key for r in reports if r.status == 'malformed']
    missing = [r.key for r in reports if r.status == 'missing' and r.required]
    found = [r.key for r in reports if r.status == 'found']
    if malformed or missing:
        parts = [f'{what}: {", ".join(keys)}' for what, keys in (('malformed', malformed), ('missing', missing))
                 if keys]
        return 1, '; '.join(parts)
    if not found:
        return 1, 'no dataset found: is the data root right (--data-root, PROMPTSYNC_DATA)?'
    skipped = [r.key for r in reports if r.status == 'missing']
    return 0, f'{len(found)} of {len(reports)} found' + (f' (not asked for: {", ".join(skipped)})' if skipped else '')


def check_data(selection: dict[str, bool], data_root: str | Path, images: int | None = DEFAULT_IMAGES) -> dict:
    """The full report (what ``--json`` writes): data root, image setting, exit code, verdict, one dict per dataset."""
    reports = [diagnose(key, data_root, required, images) for key, required in selection.items()]
    code, text = verdict(reports)
    return dict(data_root=str(Path(data_root).expanduser()), images='all' if images is None else images,
                exit_code=code, verdict=text, datasets=[asdict(r) for r in reports])


def format_report(report: dict) -> str:
    """A table (one row per dataset), then the errors, warnings and fixes of each dataset that has any."""
    rows = []
    for r in report['datasets']:
        found = r['images'] is not None
        rows.append([r['key'], r['status'] + ('' if r['required'] or r['status'] != 'missing' else ' (not asked)'),
                     f'{r["images"]:,} / {r["expected_images"]:,}' if found else f'- / {r["expected_images"]:,}',
                     f'{r["classes_with_images"]} / {r["classes"]}' if found else '-',
                     f'{r["checked"] - len(r["unreadable"])} / {r["checked"]}' if found else '-',
                     r['root'] or '-'])
    out = [f'data root: {report["data_root"]}',
           tabulate(rows, headers=['dataset', 'status', 'images / full test set', 'classes with images',
                                   'images readable / decoded', 'found in'])]
    indent = ' ' * 11
    for r in report['datasets']:
        if r['errors'] or r['warnings']:
            out.append(f'\n{r["key"]} ({r["name"]}): {r["status"]}')
            for kind, texts in (('error', r['errors']), ('warning', r['warnings']), ('fix', r['fixes'])):
                out += [f'  {kind + ":":<9}' + textwrap.indent(t, indent).lstrip() for t in texts]
    out.append(f'\nexit {report["exit_code"]}: {report["verdict"]}')
    return '\n'.join(out)
