"""A :class:`~.dassl_config.Conversion` as a promptsync python config: the text, a file, or a loaded ``Config``.

The written file lists our ``_base_`` configs (paths relative to the file, or absolute where no relative path
exists) and the overrides, under a header naming the source YAML files with their sha256 and every key's verdict.
``load_conversion`` goes through the same text, so ``tools/train.py X.yaml`` and
``tools/convert_config.py X.yaml -o X.py; tools/train.py X.py`` load the same config.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from .dassl_config import Conversion

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def _literal(value: Any, indent: int = 0) -> str:
    """Python source of a config value: dicts as ``dict(k=v)`` (keys are identifiers), the rest as repr."""
    if isinstance(value, Mapping):
        if not value:
            return 'dict()'
        pad = ' ' * (indent + 4)
        items = [f'{k}={_literal(v, indent + 4)}' for k, v in value.items()]
        one = f"dict({', '.join(items)})"
        if len(one) + indent <= 110:
            return one
        return 'dict(\n' + ',\n'.join(pad + i for i in items) + ')'
    if isinstance(value, list):
        items = [_literal(v, indent + 4) for v in value]
        one = f"[{', '.join(items)}]"
        if len(one) + indent <= 110:
            return one
        pad = ' ' * (indent + 4)
        return '[\n' + ',\n'.join(pad + i for i in items) + ']'
    return repr(value)


def _base_path(base: str, out_dir: Path) -> str:
    target = CONFIGS / base
    try:
        return os.path.relpath(target, out_dir.resolve())
    except ValueError:   # another drive (Windows)
        return str(target)


def config_text(conv: Conversion, out_path: str | Path) -> str:
    out_dir = Path(out_path).resolve().parent
    head = [f'# Converted by tools/convert_config.py from a Dassl-style YAML config ({conv.job} job, '
            f'trainer {conv.trainer}).']
    head += [f'#   source: {p}  sha256 {h}' for p, h in conv.sources]
    if conv.opts:
        head.append(f"#   options: {' '.join(conv.opts)}")
    head.append('# The verdict of every key (docs/interop.md):')
    head += ['# ' + line for line in conv.report_lines()[1:]]
    bases = ',\n          '.join(repr(_base_path(b, out_dir)) for b in conv.bases)
    body = [f'_base_ = [{bases}]']
    for key, value in conv.overrides.items():
        body.append(f'{key} = {_literal(value)}')
    return '\n'.join(head) + '\n' + '\n'.join(body) + '\n'


def write_config(conv: Conversion, out_path: str | Path) -> Path:
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(config_text(conv, out))
    return out


def load_conversion(conv: Conversion, cfg_options: Mapping[str, Any] | None = None):
    """The converted config loaded as tools load a .py config (``load_config``), from a temporary file."""
    from promptsync.utils.config import load_config
    with tempfile.TemporaryDirectory(prefix='promptsync-dassl-') as tmp:
        path = write_config(conv, Path(tmp) / 'converted.py')
        cfg = load_config(path, cfg_options)
        text = cfg.pretty_text   # resolve everything while the file exists
    del text
    return cfg
