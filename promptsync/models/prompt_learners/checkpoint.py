"""Prompt-learner checkpoints: our safetensors format, and the Dassl release formats (MaPLe/PromptAlign, CoOp, CoCoOp).

Native files are safetensors holding exactly the learner's ``state_dict`` plus string metadata. Release files are
Dassl checkpoints (``{'state_dict', 'epoch', 'optimizer', 'scheduler', 'val_result'}``) in one of two layouts:

* MaPLe / PromptAlign: the whole ``CustomCLIP`` (``register_model('MultiModalPromptLearner', self.model)``), keys
  such as ``prompt_learner.ctx``, ``prompt_learner.proj.weight``, ``prompt_learner.compound_prompts_text.N``; the
  frozen CLIP weights it may hold are dropped (counted).
* CoOp / CoCoOp: ``prompt_learner/model.pth.tar-N`` (``register_model('prompt_learner', model.prompt_learner)``),
  unprefixed keys: ``ctx`` (``[n_ctx, D]``, or ``[C, n_ctx, D]`` class-specific), and for CoCoOp
  ``meta_net.linear1.weight/bias``, ``meta_net.linear2.weight/bias``.

Both may hold the class-dependent ``token_prefix``/``token_suffix`` buffers (the SOS embedding and the embeddings of
"<class name>." + EOS of the training label space); they are dropped, counted, and their class count is recorded
(``trained_classes``). Files are read with ``torch.load(weights_only=True)``; the optimizer/scheduler objects a Dassl
scheduler pickles (its ``successor``) load as inert stand-ins and anything else is refused
(:mod:`promptsync.utils.inert_globals`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping

import torch

from promptsync.utils.files import load_torch_file, read_safetensors, require_file, write_safetensors
from promptsync.utils.hashing import file_sha256  # noqa: F401 (re-exported: tools and tests use it from here)
from promptsync.utils.inert_globals import STANDINS, unsafe_globals
from promptsync.utils.logging import get_logger

from .vision_prompts import map_release_key

logger = get_logger('prompt_checkpoint')

FORMAT = 'promptsync-prompt-learner'
WHAT = 'prompt checkpoint'
MISSING_FIX = ('MaPLe ImageNet prompts (the PromptAlign/PromptSync initialisation) are released by '
               'muzairkhattak/multimodal-prompt-learning; convert them with tools/convert_checkpoint.py and point '
               'model.prompt_checkpoint at the result')
CORRUPT_FIX = ('delete it and re-create it: python tools/convert_checkpoint.py SRC DST.safetensors for a released '
               'checkpoint, python tools/train.py CONFIG for prompts trained here')
_PREFIXES = ('module.', 'model.')
_FROZEN_LEARNER_BUFFERS = ('token_prefix', 'token_suffix')


def _torch_state(path: Path) -> tuple[Mapping[str, torch.Tensor], dict[str, str]]:
    """The state dict of a torch file (a Dassl checkpoint's ``state_dict``) and what was read around it."""
    obj = load_torch_file(path, WHAT, CORRUPT_FIX, training_state=True)  # never unpickles Python objects
    info: dict[str, str] = {}
    if isinstance(obj, Mapping) and 'state_dict' in obj:
        info = {'epoch': str(obj.get('epoch')), 'dassl_entries': json.dumps(sorted(str(k) for k in obj))}
        replaced = [n for n in (unsafe_globals(path) or []) if n in STANDINS]
        if replaced:
            info['inert_standins'] = json.dumps(replaced)  # optimizer/scheduler objects read as inert stand-ins
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'{path} is not a state dict of tensors (nor a Dassl checkpoint with a state_dict)')
    return obj, info


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _encoder_prompt_key(key: str) -> str | None:
    """The learner key of an IVLP / VPT prompt that MaPLe's repo keeps inside the encoders (``image_encoder.VPT``,
    ``{text,image}_encoder.transformer.resblocks.{i}.VPT_shallow``; ivlp.RELEASE_KEYS), else ``None``."""
    from .ivlp import RELEASE_KEYS  # the learners' own key tables (import here: the learners import this module)
    return None if key.startswith('prompt_learner.') else map_release_key(key, RELEASE_KEYS)


def release_layout(state: Mapping[str, torch.Tensor]) -> str:
    """'maple' (a whole CustomCLIP: ``prompt_learner.*`` keys, or IVLP / VPT prompts inside the encoders), 'cocoop'
    or 'coop' (a Dassl ``prompt_learner``)."""
    keys = [_strip(k) for k in state]
    if any(k.startswith('prompt_learner.') or _encoder_prompt_key(k) for k in keys):
        return 'maple'
    if 'ctx' in keys:
        return 'cocoop' if any(k.startswith('meta_net.') for k in keys) else 'coop'
    raise ValueError('no prompt_learner.* tensors and no ctx found: this is not a MaPLe/PromptAlign/CoOp/CoCoOp '
                     f'checkpoint (keys: {sorted(keys)[:8]})')


def convert_release_state(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Release keys -> learner keys; returns the kept tensors (fp32) and counts of dropped keys (and, when the
    class-token buffers are present, ``trained_classes``: the class count of the label space they were built for)."""
    layout = release_layout(state)
    kept: dict[str, torch.Tensor] = {}
    dropped = {'frozen_clip_weights': 0, 'class_token_buffers': 0}
    for key, value in state.items():
        key = _strip(key)
        if layout == 'maple':
            encoder_prompt = _encoder_prompt_key(key)
            if encoder_prompt is not None:  # IVLP / VPT: the prompts live in the encoders' blocks
                kept[encoder_prompt] = value.detach().float().contiguous()
                continue
            if not key.startswith('prompt_learner.'):
                dropped['frozen_clip_weights'] += 1
                continue
            key = key[len('prompt_learner.'):]
        if key in _FROZEN_LEARNER_BUFFERS:
            dropped['class_token_buffers'] += 1
            dropped['trained_classes'] = int(value.shape[0])
            continue
        kept[key] = value.detach().float().contiguous()
    if not kept:
        raise ValueError('no learnable prompt tensors found: this is not a MaPLe/PromptAlign/CoOp/CoCoOp/IVLP/VPT '
                         'checkpoint')
    return kept, dropped


def class_token_suffix(state: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The release's ``token_suffix`` (embeddings of "<class>." + EOS per training class), if it kept one."""
    for key, value in state.items():
        if _strip(key) in ('token_suffix', 'prompt_learner.token_suffix'):
            return value
    return None


def read_prompt_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Learnable tensors and metadata from a native safetensors file or a release checkpoint."""
    return _read(path)[:2]


def _read(path) -> tuple[dict[str, torch.Tensor], dict[str, str], torch.Tensor | None]:
    path = require_file(path, WHAT, MISSING_FIX)
    if path.suffix == '.safetensors':
        state, meta = read_safetensors(path, WHAT, CORRUPT_FIX)
        if meta.get('format') != FORMAT:
            suffix = class_token_suffix(state)
            layout = release_layout(state)
            state, dropped = convert_release_state(state)
            meta = dict(meta, dropped=json.dumps(dropped), layout=layout)
            return state, meta, suffix
        return state, meta, None
    raw, info = _torch_state(path)
    layout, suffix = release_layout(raw), class_token_suffix(raw)
    state, dropped = convert_release_state(raw)
    return state, dict(info, format='release', layout=layout, dropped=json.dumps(dropped)), suffix


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
    state, meta, suffix = _read(path)
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
    meta = dict(meta, sha256=file_sha256(path), path=str(path))
    note = _label_space_note(learner, meta, state, suffix, path)
    return dict(meta, label_space_note=note) if note else meta


def _expected_suffix(learner, names: list[str], n_ctx: int) -> torch.Tensor:
    """CoOp's ``token_suffix`` for ``names`` under this backbone: the embeddings after SOS + n_ctx context tokens
    of ``'X X ... X <name>.'`` (CoOp's construction; the context words do not matter)."""
    bb = learner.backbone
    prompts = [' '.join(['X'] * n_ctx) + ' ' + name.replace('_', ' ') + '.' for name in names]
    with torch.no_grad():
        return bb.embed_tokens(bb.tokenize(prompts))[:, 1 + n_ctx:].float().cpu()


def _label_space_note(learner, meta: dict, state: Mapping[str, torch.Tensor], suffix: torch.Tensor | None,
                      path) -> str:
    """What the release's class-token buffers say about the label space it was trained on (recorded; a
    class-specific context whose classes do not match warns)."""
    trained = json.loads(meta.get('dropped') or '{}').get('trained_classes')
    names = list(getattr(learner, 'classnames', None) or [])
    if trained is None or not names:
        return ''
    ctx = state.get('ctx')
    class_specific = ctx is not None and ctx.dim() == 3
    if trained != len(names):
        note = (f'the checkpoint was trained on {trained} classes (its token_prefix/token_suffix), this label space '
                f'has {len(names)}; its context is shared by all classes, so it applies to these')
        logger.info('%s: %s', path, note)
        return note
    if not class_specific or suffix is None:
        return f'trained on {trained} classes, as many as this label space'
    want = _expected_suffix(learner, names, int(ctx.shape[1]))
    got = suffix.float().cpu()
    n = min(want.shape[1], got.shape[1])
    same = [bool(torch.allclose(got[c, :n], want[c, :n], rtol=1e-2, atol=2e-3)) for c in range(len(names))]
    if all(same):
        return f'class-specific contexts for the same {trained} classes in the same order (token_suffix matches)'
    off = [names[c] for c, ok in enumerate(same) if not ok]
    note = (f'class-specific contexts: the checkpoint\'s class tokens (token_suffix) differ from this label space\'s '
            f'for {len(off)} of {trained} classes (first: {off[:5]}); contexts trained for other classes, another class '
            'order or with another token embedding would be applied to the wrong classes')
    logger.warning('%s: %s. Check that the class names and their order are the ones it was trained with.', path, note)
    return note
