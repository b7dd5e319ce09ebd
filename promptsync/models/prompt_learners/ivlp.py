"""IVLP: independent deep vision-language prompts (MaPLe's ablation baseline; Khattak et al., CVPR 2023).

Mirrors ``trainers/independentVL.py`` and ``clip/model.py`` (``ResidualAttentionBlock_IVLP``,
``VisionTransformer``) of muzairkhattak/multimodal-prompt-learning at commit 69bce21:

* text: CoOp's context ``ctx`` ``[n_ctx_text, D_text]`` from the first ``n_ctx_text`` tokens of ``ctx_init``
  ("a photo of a {class}." with "a photo" learnable for 2 tokens; the rest of the words stay fixed), class name
  at the end; text block ``i`` for ``1 <= i < depth_text`` owns ``VPT_shallow`` ``[n_ctx_text, D_text]``
  (N(0, 0.02)), which *replaces* the context positions ``1..n_ctx_text`` of its input (here ``deep_text[str(i)]``);
* vision: VPT-deep (:mod:`.vision_prompts`): ``vision_ctx`` appended before ``ln_pre``, ``deep_vision[str(i)]``
  replacing the last ``n_ctx_vision`` tokens at block ``i``; ``depth_vision=0`` (with ``n_ctx_vision=0``) is
  the release's "deep language prompting" variant (text prompts only);
* no coupling: a text tensor never changes the image features and a vision tensor never the text features.

Release checkpoint keys -> learner keys (the release's model is the whole ``CustomCLIP``; its deep prompts live
in the encoders, outside ``prompt_learner``), applied by :func:`map_release_key` with :data:`RELEASE_KEYS`:
``prompt_learner.ctx`` -> ``ctx``; ``text_encoder.transformer.resblocks.{i}.VPT_shallow`` -> ``deep_text.{i}``;
``image_encoder.VPT`` -> ``vision_ctx``; ``image_encoder.transformer.resblocks.{i}.VPT_shallow`` ->
``deep_vision.{i}``; ``prompt_learner.token_prefix``/``token_suffix`` are class-dependent buffers (rebuilt here)
and every other key is a frozen CLIP weight.

Not mirrored: the release casts every prompt to fp16 (``.half()``) before splicing it in, even in fp32 runs; here
the prompts follow the backbone's precision. With ``ctx_init`` and more than 4 context tokens the release silently
falls back to a random context; here ``n_ctx_text`` larger than ``ctx_init``'s tokens is an error (use
``ctx_init=None`` for a random context).
"""
from __future__ import annotations

import re

import torch
from torch import nn

from promptsync.errors import ConfigError
from promptsync.registry import PROMPT_LEARNERS

from .base import Prompts
from .class_prompts import ClassTokens
from .coop import CoOp
from .vision_prompts import RELEASE_VISION_KEYS, add_vision_prompts, check_depth, map_release_key, vision_prompts

#: (release key pattern, learner key template) of an IVLP checkpoint of MaPLe's repo
RELEASE_KEYS = (
    (re.compile(r'^prompt_learner\.ctx$'), 'ctx'),
    (re.compile(r'^text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$'), r'deep_text.\1'),
) + RELEASE_VISION_KEYS

__all__ = ['IVLP', 'RELEASE_KEYS', 'release_key']


@PROMPT_LEARNERS.register_module()
class IVLP(CoOp):
    """Args:
        n_ctx_text: learnable text tokens per layer (release: 2, from "a photo").
        n_ctx_vision: learnable vision tokens per layer (release: 2); 0 with ``depth_vision=0`` = none.
        ctx_init: words initialising the text context (``None`` = N(0, ``init_std``)).
        depth_text: text layers 0..depth_text-1 carry prompts (>= 1; the release's ``train.py`` default is 9,
            its ViT-B/16 recipe ``vit_b16_c2_ep5_batch4_2+2ctx.yaml`` uses 12).
        depth_vision: vision layers 0..depth_vision-1 carry prompts (0 = none; default 9, recipe 12).
        init_std: std of the N(0, std) initialisation of every prompt not taken from ``ctx_init`` (release: 0.02).
    """

    def __init__(self, backbone, n_ctx_text: int = 2, n_ctx_vision: int = 2, ctx_init: str | None = 'a photo of a',
                 depth_text: int = 9, depth_vision: int = 9, init_std: float = 0.02,
                 classnames: list[str] | None = None):
        check_depth(backbone, n_ctx_text, depth_text, 'depth_text', 'text', backbone.n_text_layers, allow_zero=False)
        if depth_vision or n_ctx_vision:
            if not backbone.supports_visual_prompts:
                raise ConfigError(f"IVLP vision prompts need a ViT image tower; '{backbone.model_name}' has "
                                  f'{type(backbone.visual).__name__}', where='model.prompt_learner.depth_vision',
                                  fix='set n_ctx_vision=0 and depth_vision=0 (text prompts only), or use a ViT')
            check_depth(backbone, n_ctx_vision, depth_vision, 'depth_vision', 'vision', backbone.n_vision_layers,
                        allow_zero=True)
        super().__init__(backbone, n_ctx=n_ctx_text, ctx_init=ctx_init, class_token_position='end',
                         class_specific=False, init_std=init_std, classnames=None)
        self.depth_text = depth_text
        self.deep_text = nn.ParameterDict(
            {str(i): nn.Parameter(torch.empty(self.n_ctx, backbone.text_width).normal_(std=init_std))
             for i in range(1, depth_text)})
        width = backbone.vision_width if depth_vision else 0
        add_vision_prompts(self, width, n_ctx_vision, depth_vision, init_std)
        self.branches = {'text': ('ctx', 'deep_text')}
        if depth_vision:
            self.branches['vision'] = ('vision_ctx', 'deep_vision')
        if classnames is not None:
            self.set_classnames(classnames)

    @property
    def has_vision_prompts(self) -> bool:
        return bool(self.depth_vision)

    def _build_prompts(self, tokens: ClassTokens) -> Prompts:
        text = super()._build_prompts(tokens).text
        text.deep = {int(k): p for k, p in self.deep_text.items()}
        return Prompts(text=text, vision=vision_prompts(self))


def release_key(key: str) -> str | None:
    """The IVLP learner key of a key of the release's checkpoint (``None`` = not an IVLP prompt tensor)."""
    return map_release_key(key, RELEASE_KEYS)
