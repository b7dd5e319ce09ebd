"""Readers for the data files under ``promptsync/datasets/data`` (class names, masks, templates)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

from promptsync.errors import ConfigError, ResourceError

DATA_DIR = Path(__file__).parent / 'data'


def data_file(relpath: str) -> Path:
    path = DATA_DIR / relpath
    if not path.is_file():
        raise FileNotFoundError(f'promptsync data file {path} is missing (broken install?)')
    return path


@lru_cache(maxsize=None)
def imagenet_wnids_and_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 1000 ImageNet wnids (sorted = label order) and their CLIP class names."""
    wnids, names = [], []
    for line in data_file('imagenet/classnames.txt').read_text().splitlines():
        wnid, name = line.split(' ', 1)
        wnids.append(wnid)
        names.append(name)
    return tuple(wnids), tuple(names)


@lru_cache(maxsize=None)
def read_name_list(relpath: str) -> tuple[str, ...]:
    """A shipped class list (e.g. ``oxford_pets/classnames.txt``): one class name per line, in label order."""
    return tuple(line.strip() for line in data_file(relpath).read_text().splitlines() if line.strip())


@lru_cache(maxsize=None)
def read_indices(relpath: str) -> tuple[int, ...]:
    return tuple(int(x) for x in data_file(relpath).read_text().split())


def read_classnames_file(path: str | Path) -> dict[str, str]:
    """A CoOp ``classnames.txt``: lines ``"<folder> <class name>"`` -> ``{folder: name}``.

    A line without a class name, or a folder listed on more than one line, is a :class:`ConfigError`.
    """
    if not Path(path).is_file():
        raise ResourceError(f'class names file {path} does not exist', where='dataset.classnames',
                            fix='point classnames at a file of lines "<folder> <class name>", or leave it unset '
                                'to use the folder names')
    mapping: dict[str, str] = {}
    lines_of: dict[str, list[int]] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ConfigError(f'line {lineno} of the class names file is {line.strip()!r}: expected '
                              '"<folder> <class name>" (a class folder, a space, its class name)',
                              where=f'{path}:{lineno}',
                              fix='write one line "<folder> <class name>" per class folder, e.g. "golden_retriever '
                                  'golden retriever"; names alone, in label order, go in classnames=[...] instead')
        mapping[parts[0]] = parts[1].strip()
        lines_of.setdefault(parts[0], []).append(lineno)
    repeated = [f'{f!r} (lines {", ".join(map(str, n))})' for f, n in lines_of.items() if len(n) > 1]
    if repeated:
        raise ConfigError(f'{len(repeated)} folders are listed more than once in the class names file: '
                          f'{", ".join(repeated[:5])}', where=str(path),
                          fix='keep exactly one "<folder> <class name>" line per class folder')
    return mapping


def load_templates(spec: str | Sequence[str]) -> list[str]:
    """Templates from a list of strings, a shipped name (``'single'``, ``'imagenet80'``, a dataset key such as
    ``'oxford_pets'`` for CoOp's template of that dataset) or a file path."""
    if isinstance(spec, str):
        path = Path(spec)
        if not path.is_file():
            shipped = DATA_DIR / 'templates' / f'{spec}.txt'
            if not shipped.is_file():
                names = sorted(p.stem for p in (DATA_DIR / 'templates').glob('*.txt'))
                raise FileNotFoundError(f"templates '{spec}' is neither a file nor a shipped template set {names}")
            path = shipped
        templates = [t for t in path.read_text().splitlines() if t.strip()]
    else:
        templates = list(spec)
    bad = [t for t in templates if t.count('{}') != 1]
    if bad or not templates:
        raise ValueError(f'every template needs exactly one "{{}}" for the class name; bad: {bad[:3]}')
    return templates
