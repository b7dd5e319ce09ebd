"""Prompt-learner checkpoints: our safetensors format, and the MaPLe / PromptAlign (Dassl) release format.

Native files are safetensors holding exactly the learner's ``state_dict`` plus string metadata. Release
files are Dassl checkpoints (``{'state_dict': ..., 'epoch': ...}``) of MaPLe's ``CustomCLIP``, with keys
such as ``prompt_learner.ctx``, ``prompt_learner.proj.weight``, ``prompt_learner.compound_prompts_text.N`` and
``prompt_learner.compound_prompt_projections.N.weight``; they may also hold the frozen CLIP weights and the
class-dependent ``token_prefix``/``token_suffix`` buffers, which are dropped (and counted). Files are read
with ``torch.load(weights_only=True)``: nothing is unpickled.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import torch

from promptsync.utils.files import load_torch_file, read_safetensors, require_file, write_safetensors
from promptsync.utils.hashing import file_sha256  # noqa: F401 (re-exported: tools and tests use it from here)

FORMAT = 'promptsync-prompt-learner'
WHAT = 'prompt checkpoint'
MISSING_FIX = ('MaPLe ImageNet prompts (the PromptAlign/PromptSync initialisation) are released by '
               'muzairkhattak/multimodal-prompt-learning; convert them with tools/convert_checkpoint.py and point '
               'model.prompt_checkpoint at the result')
CORRUPT_FIX = ('delete it and re-create it: python tools/convert_checkpoint.py SRC DST.safetensors for a released '
               'checkpoint, python tools/train.py CONFIG for prompts trained here')
_PREFIXES = ('module.', 'model.')
_FROZEN_LEARNER_BUFFERS = ('token_prefix', 'token_suffix')


def _torch_state(path: Path) -> Mapping[str, torch.Tensor]:
    obj = load_torch_file(path, WHAT, CORRUPT_FIX)  # never unpickles Python objects
    if isinstance(obj, Mapping) and 'state_dict' in obj:
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'{path} is not a state dict of tensors (nor a Dassl checkpoint with a state_dict)')
    return obj


def convert_release_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """MaPLe/PromptAlign keys -> learner keys; returns the kept tensors (fp32) and counts of dropped keys."""
    kept: dict[str, torch.Tensor] = {}
    dropped = {'frozen_clip_weights': 0, 'class_token_buffers': 0}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith('prompt_learner.'):
            dropped['frozen_clip_weights'] += 1
            continue
        key = key[len('prompt_learner.'):]
        if key in _FROZEN_LEARNER_BUFFERS:
            dropped['class_token_buffers'] += 1
            continue
        kept[key] = value.detach().float().contiguous()
    if not kept:
        raise ValueError('no prompt_learner.* tensors found: this is not a MaPLe/PromptAlign/CoOp checkpoint')
    return kept, dropped


def read_prompt_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Learnable tensors and metadata from a native safetensors file or a release checkpoint."""
    path = require_file(path, WHAT, MISSING_FIX)
    if path.suffix == '.safetensors':
        state, meta = read_safetensors(path, WHAT, CORRUPT_FIX)
        if meta.get('format') != FORMAT:
            state, dropped = convert_release_state(state)
            meta = dict(meta, dropped=json.dumps(dropped))
        return state, meta
    state, dropped = convert_release_state(_torch_state(path))
    return state, {'format': 'release', 'dropped': json.dumps(dropped)}


def save_prompt_checkpoint(state: Mapping[str, torch.Tensor], path: str | Path,
                           metadata: Mapping[str, str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: str(v) for k, v in dict(metadata or {}).items()}
    meta['format'] = FORMAT
    return write_safetensors(state, path, meta)  # atomic, and the same content gives the same bytes


def _mismatch_hint(key: str, got: tuple, want: tuple, learner) -> str:
    if key == 'ctx' and len(got) == 3 and len(want) == 3 and got[0] != want[0]:
        return f'class-specific contexts for {got[0]} classes, this label space has {want[0]}'
    if got[-1] != want[-1]:
        return f'width {got[-1]} vs {want[-1]}: trained for another backbone than {learner.backbone.model_name}'
    if got[:-1] != want[:-1]:
        return 'a different number of context tokens (n_ctx)'
    return 'different shape'


def load_prompt_checkpoint(learner, path: str | Path) -> dict[str, str]:
    """Load learnable tensors into ``learner`` (strict: every key, every shape); returns the file's metadata."""
    state, meta = read_prompt_checkpoint(path)
    current = learner.state_dict(keep_vars=True)
    missing = sorted(set(current) - set(state))
    unexpected = sorted(set(state) - set(current))
    if missing or unexpected:
        hint = ''
        depth_of = lambda keys: len({m.group(1) for k in keys if (m := re.match(r'compound_prompts_text\.(\d+)', k))})  # noqa: E731
        if depth_of(state) != depth_of(current):
            hint = (f' The checkpoint has prompt depth {depth_of(state) + 1}, the learner '
                    f'{depth_of(current) + 1}: set model.prompt_learner.depth={depth_of(state) + 1}.')
        raise KeyError(f'{path} does not fit {type(learner).__name__}: missing {missing[:6]}, unexpected '
                       f'{unexpected[:6]}.{hint}')
    for key, tensor in current.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f'{path}: {key} has shape {tuple(state[key].shape)}, the learner expects '
                             f'{tuple(tensor.shape)} ({_mismatch_hint(key, tuple(state[key].shape), tuple(tensor.shape), learner)})')
    with torch.no_grad():
        for key, tensor in current.items():
            tensor.copy_(state[key].to(tensor.dtype))
    return dict(meta, sha256=file_sha256(path), path=str(path))
