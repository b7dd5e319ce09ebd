"""Resume state of a training run: one safetensors file, tensors + a JSON document in its metadata.

Nothing is pickled. Tensors: the learner (``learner.*``), the best-validation learner (``best.*``) and the
optimizer's per-parameter tensors (``optimizer.<param id>.<name>``). JSON (metadata key ``state``): the epoch
count, the optimizer's param groups and scalar per-parameter state, the scheduler and grad-scaler state dicts,
the per-epoch history and anything else the trainer records. The file is written to a temporary name and
renamed, so an interruption never leaves a torn state behind.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from promptsync.errors import CorruptFileError

from .files import read_safetensors, write_safetensors


def flatten_optimizer(state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` -> (tensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state_dict['state'].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f'optimizer.{pid}.{name}'] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, dict(param_groups=state_dict['param_groups'], scalars=scalars)


def unflatten_optimizer(tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_optimizer` (a dict ``optimizer.load_state_dict`` accepts)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith('optimizer.'):
            _, pid, name = key.split('.', 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, entries in rest['scalars'].items():
        state.setdefault(int(pid), {}).update(entries)
    return dict(state=state, param_groups=[dict(g) for g in rest['param_groups']])


def save_state(path: str | Path, tensors: Mapping[str, torch.Tensor], document: Mapping[str, Any]) -> Path:
    """Write ``tensors`` and the JSON ``document`` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, allow_nan=True)  # fails loudly on anything not JSON-able
    return write_safetensors(tensors, path, dict(state=text))


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    fix = f'delete {path} (the run starts over), or use --no-resume'
    tensors, meta = read_safetensors(path, 'training resume state', fix)
    try:
        document = json.loads(meta['state'])
    except (KeyError, ValueError) as err:
        raise CorruptFileError(f'{path} is not a resume state (no readable state document: {err})', where=str(path),
                               fix=fix) from err
    return tensors, document


def prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.`` with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + '.')}
