"""Independent deep vision prompts (VPT-deep as MaPLe's release implements it), shared by ``VPT`` and ``IVLP``.

Semantics of muzairkhattak/multimodal-prompt-learning (``clip/model.py``, ``VisionTransformer`` and
``ResidualAttentionBlock_IVLP``, commit 69bce21): ``VPT`` ``[n, W]`` is appended after the positional embedding,
before ``ln_pre`` (the backbone's shallow vision prompt); block ``i`` for ``1 <= i < depth`` owns ``VPT_shallow``
``[n, W]``, which *replaces* the last ``n`` tokens of its input (the backbone's deep vision prompt at layer ``i``);
every tensor is initialised N(0, 0.02). ``depth = 0`` is no vision prompt at all.

Release checkpoint keys (the prompts live in the image encoder there, not in ``prompt_learner``):
``image_encoder.VPT`` -> ``vision_ctx``, ``image_encoder.transformer.resblocks.{i}.VPT_shallow`` ->
``deep_vision.{i}`` (the layer number is kept: see :data:`RELEASE_VISION_KEYS`).
"""
from __future__ import annotations

import re

import torch
from torch import nn

from promptsync.errors import ConfigError

from .base import VisionPrompts

#: (release key pattern, learner key template) for the vision side of MaPLe's repo's IVLP / VPT checkpoints
RELEASE_VISION_KEYS = (
    (re.compile(r'^image_encoder\.VPT$'), 'vision_ctx'),
    (re.compile(r'^image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$'), r'deep_vision.\1'),
)


def map_release_key(key: str, patterns) -> str | None:
    """The learner key of a release key (``None`` = not a prompt tensor of this learner)."""
    for prefix in ('module.', 'model.'):
        if key.startswith(prefix):
            key = key[len(prefix):]
    for pattern, target in patterns:
        if pattern.match(key):
            return pattern.sub(target, key)
    return None


def check_depth(backbone, n_ctx: int, depth: int, name: str, branch: str, n_layers: int, allow_zero: bool) -> None:
    """``depth`` prompted layers (0..depth-1) with ``n_ctx`` tokens each must fit the backbone."""
    lo = 0 if allow_zero else 1
    if not (isinstance(depth, int) and lo <= depth <= n_layers):
        raise ConfigError(f'{name}={depth!r} must be an integer in {lo}..{n_layers} ({branch} layers of '
                          f"'{backbone.model_name}')", where=f'model.prompt_learner.{name}',
                          fix=f'set {name} to at most {n_layers} (the official recipes use the full depth)')
    if not isinstance(n_ctx, int) or n_ctx < 0 or (n_ctx == 0) != (depth == 0):
        raise ConfigError(f'{branch} prompts with {n_ctx!r} tokens and depth {depth}: give both as positive '
                          'integers, or both 0 for no prompts on this branch',
                          where=f'model.prompt_learner ({branch})', fix='n_ctx >= 1 with depth >= 1, or 0 and 0')


def add_vision_prompts(learner: nn.Module, width: int, n_ctx: int, depth: int, init_std: float) -> None:
    """Register ``vision_ctx`` ``[n, W]`` (layer 0; ``None`` when ``depth=0``) and ``deep_vision[str(i)]``
    ``[n, W]`` for layers ``1..depth-1`` on ``learner`` itself, so the state-dict keys are top level."""
    learner.n_ctx_vision, learner.depth_vision = n_ctx, depth
    if depth:
        learner.vision_ctx = nn.Parameter(torch.empty(n_ctx, width).normal_(std=init_std))
    else:
        learner.register_parameter('vision_ctx', None)
    learner.deep_vision = nn.ParameterDict(
        {str(i): nn.Parameter(torch.empty(n_ctx, width).normal_(std=init_std)) for i in range(1, depth)})


def vision_prompts(learner: nn.Module) -> VisionPrompts | None:
    """The backbone's ``VisionPrompts`` of the tensors :func:`add_vision_prompts` registered."""
    if not learner.depth_vision:
        return None
    return VisionPrompts(shallow=learner.vision_ctx, deep={int(k): p for k, p in learner.deep_vision.items()})
