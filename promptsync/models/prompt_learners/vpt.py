"""VPT: deep visual prompts only, with a fixed hand-crafted text prompt (VPT-deep as MaPLe's repo runs it).

Mirrors ``trainers/vpt.py`` of muzairkhattak/multimodal-prompt-learning at commit 69bce21: the text side is
``FixedEmbeddings`` — the frozen CLIP text features of "a photo of a {class}." (here :class:`TemplatePrompts`
with ``templates='single'``; another template set is allowed and ensembled as for zero-shot CLIP) — and the
image encoder carries VPT-deep prompts (:mod:`.vision_prompts`): ``vision_ctx`` ``[n_ctx_vision, W]`` appended
before ``ln_pre`` and ``deep_vision[str(i)]`` replacing the last ``n_ctx_vision`` tokens at blocks
``1..depth-1``, all N(0, 0.02). Nothing on the text side is learnable, so every update moves the vision prompts.

Release checkpoint keys -> learner keys (:data:`RELEASE_KEYS`): ``image_encoder.VPT`` -> ``vision_ctx``,
``image_encoder.transformer.resblocks.{i}.VPT_shallow`` -> ``deep_vision.{i}``; every other key is a frozen CLIP
weight. Not mirrored: the release casts the prompts to fp16 (``.half()``) before splicing them in, even in fp32.
"""
from __future__ import annotations

from typing import Sequence

from promptsync.errors import ConfigError
from promptsync.registry import PROMPT_LEARNERS

from .base import Prompts
from .templates import TemplatePrompts
from .vision_prompts import RELEASE_VISION_KEYS, add_vision_prompts, check_depth, map_release_key, vision_prompts

RELEASE_KEYS = RELEASE_VISION_KEYS

__all__ = ['VPT', 'RELEASE_KEYS', 'release_key']


@PROMPT_LEARNERS.register_module()
class VPT(TemplatePrompts):
    """Args:
        n_ctx_vision: learnable vision tokens per layer (the release's recipe ``vit_b16_c2_ep5_batch4_4.yaml``:
            8; its ``train.py`` default: 2).
        depth: vision layers 0..depth-1 carry prompts (recipe: 12; ``train.py`` default 1 = shallow VPT).
        templates: the fixed text prompt (release: 'single' = "a photo of a {}.").
        init_std: std of the prompts' N(0, std) initialisation (release: 0.02).
    """

    branches = {'vision': ('vision_ctx', 'deep_vision')}

    def __init__(self, backbone, n_ctx_vision: int = 8, depth: int = 12, templates: str | Sequence[str] = 'single',
                 init_std: float = 0.02, classnames: list[str] | None = None):
        if not backbone.supports_visual_prompts:
            raise ConfigError(f"VPT needs a ViT image tower; '{backbone.model_name}' has "
                              f'{type(backbone.visual).__name__}', where='model.prompt_learner',
                              fix='use a ViT backbone, or CoOp for text-only prompts')
        check_depth(backbone, n_ctx_vision, depth, 'depth', 'vision', backbone.n_vision_layers, allow_zero=False)
        super().__init__(backbone, templates=templates, classnames=None)
        self.depth = depth
        self.init_std = init_std
        add_vision_prompts(self, backbone.vision_width, n_ctx_vision, depth, init_std)
        if classnames is not None:
            self.set_classnames(classnames)

    @property
    def has_vision_prompts(self) -> bool:
        return True

    def prompts_for(self, classnames: list[str]) -> Prompts:
        return Prompts(text=super().prompts_for(classnames).text, vision=vision_prompts(self))

    def forward(self) -> Prompts:
        if not self.classnames:
            raise RuntimeError(f'{type(self).__name__}.set_classnames() was never called')
        return Prompts(text=super().forward().text, vision=vision_prompts(self))


def release_key(key: str) -> str | None:
    """The VPT learner key of a key of the release's checkpoint (``None`` = not a VPT prompt tensor)."""
    return map_release_key(key, RELEASE_KEYS)
