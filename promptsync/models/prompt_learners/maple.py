"""MaPLe: coupled multimodal prompts (Khattak et al., CVPR 2023).

Text context ``ctx`` (shallow) and ``compound_prompts_text[j]`` (deep, layers 1..depth-1) are
learnable; the vision prompts are *produced from them* by linear couplings (``proj`` for the shallow
prompt, ``compound_prompt_projections[j]`` for layer j+1), so updating the text prompts moves both
branches. Attribute names follow MaPLe's release so its checkpoints map key-for-key.
"""
from __future__ import annotations

import torch
from torch import nn

from promptsync.registry import PROMPT_LEARNERS

from .base import Prompts, VisionPrompts
from .class_prompts import ClassTokens
from .coop import CoOp


@PROMPT_LEARNERS.register_module()
class MaPLe(CoOp):
    """Args:
        n_ctx: learnable tokens per layer (MaPLe: 2, initialised from "a photo").
        depth: prompt depth J (layers 0..J-1 carry prompts; MaPLe uses 9 for base-to-novel, 3 for DG).
        coupling_bias: whether the text->vision coupling layers have a bias (MaPLe: yes).
        deep_init_std: std of the deep text prompts' N(0, std) initialisation.
    """

    branches = {'text': ('ctx', 'compound_prompts_text'), 'vision': ('proj', 'compound_prompt_projections')}

    def __init__(self, backbone, n_ctx: int = 2, ctx_init: str | None = 'a photo of a', depth: int = 3,
                 coupling_bias: bool = True, deep_init_std: float = 0.02, classnames: list[str] | None = None):
        if not backbone.supports_visual_prompts:
            raise ValueError(f"MaPLe needs a ViT image tower; '{backbone.model_name}' has "
                             f'{type(backbone.visual).__name__}. Use CoOp for text-only prompts.')
        max_depth = min(backbone.n_text_layers, backbone.n_vision_layers)
        if not 1 <= depth <= max_depth:
            raise ValueError(f'MaPLe depth={depth} must be in 1..{max_depth} for this backbone')
        super().__init__(backbone, n_ctx=n_ctx, ctx_init=ctx_init, class_token_position='end',
                         class_specific=False, init_std=deep_init_std, classnames=None)
        self.depth = depth
        d_text, d_vision = backbone.text_width, backbone.vision_width
        self.proj = nn.Linear(d_text, d_vision, bias=coupling_bias)
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_ctx, d_text).normal_(std=deep_init_std)) for _ in range(depth - 1)])
        self.compound_prompt_projections = nn.ModuleList(
            [nn.Linear(d_text, d_vision, bias=coupling_bias) for _ in range(depth - 1)])
        if classnames is not None:
            self.set_classnames(classnames)

    @property
    def has_vision_prompts(self) -> bool:
        return True

    def _build_prompts(self, tokens: ClassTokens) -> Prompts:
        text = super()._build_prompts(tokens).text
        text.deep = {j + 1: p for j, p in enumerate(self.compound_prompts_text)}
        deep_vision = {j + 1: layer(p) for j, (p, layer) in
                       enumerate(zip(self.compound_prompts_text, self.compound_prompt_projections))}
        return Prompts(text=text, vision=VisionPrompts(shallow=self.proj(self.ctx), deep=deep_vision))
