"""Readers for the data files under ``promptsync/datasets/data`` (class names, masks, templates)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

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
    """A CoOp ``classnames.txt``: lines ``"<folder> <class name>"`` -> ``{folder: name}``."""
    mapping: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(' ', 1)
        if len(parts) != 2:
            raise ValueError(f'{path}:{lineno}: expected "<folder> <class name>", got {line!r}')
        mapping[parts[0]] = parts[1].strip()
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
