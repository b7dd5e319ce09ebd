"""Config helpers around mmengine's ``Config`` (classic ``_base_`` python files only)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

from promptsync.errors import ConfigError, ResourceError

from .cfg_options import check_types


def flatten_options(options: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """Nested option dicts as dotted keys (``{'data': {'max_samples': 50}}`` -> ``{'data.max_samples': 50}``).

    mmengine merges a dict value into the key's dict, so flattening keeps the meaning — and stops a later
    ``data={...}`` from replacing an earlier ``data.dataset.per_class``. A dict with ``_delete_`` or ``type``
    stays whole (it replaces, or names a module).
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        full = f'{prefix}{key}'
        if isinstance(value, Mapping) and value and '_delete_' not in value and 'type' not in value:
            out.update(flatten_options(value, full + '.'))
        else:
            out[full] = value
    return out


_MISSING = object()


def lookup(tree: Any, dotted: str, default: Any = None) -> Any:
    """The value at a dotted key of a config tree (list indices allowed: ``tta.losses.1.weight``), or ``default``."""
    node = tree
    for part in dotted.split('.'):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def _replacing(tree: Mapping, key: str, value: Any) -> Any:
    """A dict given for a key that holds no dict (``tta.update='joint'`` <- ``dict(type='Mine')``) can only mean a
    replacement; mmengine would refuse to merge it, so it is marked ``_delete_``."""
    if not isinstance(value, Mapping):
        return value
    node = lookup(tree, key, _MISSING)
    return value if node is _MISSING or node is None or isinstance(node, Mapping) else dict(value, _delete_=True)


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """``Config.fromfile`` (honours ``_base_`` and ``custom_imports``) + ``--cfg-options`` applied last.

    Option values are checked against the types the config holds (a number key refuses a string); unknown keys
    are refused later, against the job's schema (:func:`promptsync.engine.config_check.check_config`).
    """
    path = Path(path)
    if not path.is_file():
        raise ResourceError(f'config file {path} does not exist', where=str(path),
                            fix='give the path of a config file, e.g. configs/promptsync/vit_b16_imagenet_r.py')
    try:
        cfg = Config.fromfile(str(path))
    except (SyntaxError, ImportError, KeyError, ValueError, TypeError, AssertionError) as err:
        raise ConfigError(f'the config {path} cannot be read: {type(err).__name__}: {err}', where=str(path),
                          fix='fix the file (a python config with _base_ = [...])') from err
    if cfg_options:
        options = flatten_options(cfg_options)
        tree = cfg.to_dict()
        check_types(tree, options)
        options = {k: _replacing(tree, k, v) for k, v in options.items()}
        try:
            cfg.merge_from_dict(options)
        except (TypeError, KeyError, ValueError, AttributeError) as err:
            raise ConfigError(f'--cfg-options cannot be merged into {path}: {type(err).__name__}: {err}',
                              where=', '.join(options),
                              fix='a dict cannot be merged into a value of another type; replace the whole value '
                                  "with _delete_=True, e.g. \"tta.update=dict(_delete_=True, type='joint')\", or "
                                  'set the inner key') from err
    return cfg


def flag(value: Any, key: str) -> bool:
    """A config switch that must be ``True`` or ``False`` (``'yes'`` or ``1`` from a typo is refused, never read as a
    truth value)."""
    if not isinstance(value, bool):
        raise ConfigError(f'{key} must be True or False, got {value!r}', where=key,
                          fix=f'write {key}=True or {key}=False')
    return value
