"""CoCoOp: conditional context (Zhou et al., CVPR 2022), and the per-image context TPT tunes on top of it.

CoOp's context ``ctx`` ``[n_ctx, D_text]`` shifted per image by a small meta-net of the image feature:
``ctx_b = ctx + linear2(relu(linear1(f_b)))`` (one shift for every context token), so every image has its own
class prompts: ``B`` images cost ``B * C`` text sequences. The learner is *image-conditioned*
(``conditions_on_image``): its prompts exist only for a batch of image features, ``forward(image_features)``, and
asking for them without one is a :class:`~promptsync.errors.ConfigError` naming what works (so a method that caches
class text features once cannot produce numbers with it). Text rows are image-major (row ``b * C + c`` is image
``b``, class ``c``), the copy-major convention of :mod:`.stacking`.

Attribute names follow KaiyangZhou/CoOp's ``trainers/cocoop.py`` (``ctx``, ``meta_net.linear1``,
``meta_net.linear2``), so the released ``prompt_learner`` state dicts map key for key (their ``token_prefix`` /
``token_suffix`` buffers are rebuilt from the class names here, as CoCoOp's own ``load_model`` drops them).

TPT+CoCoOp (azshue/TPT ``clip/cocoop.py``: ``gen_ctx`` / ``forward_ctx``) tunes, per test image, the conditioned
context itself: :meth:`CoCoOp.context_learner` gives a plain (not conditioned) learner whose one parameter ``ctx``
is that per-image context, with CoCoOp's token layout; ``ConditionedEpisodicTTA`` sets it per image.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from promptsync.errors import ConfigError
from promptsync.models.backbones.prompted_forward import replace_positions
from promptsync.registry import PROMPT_LEARNERS

from .base import PromptLearner, Prompts, TextPrompts
from .class_prompts import ClassTokens
from .coop import CoOp

NEEDS_IMAGE_FIX = ("evaluate it with tta=dict(type='ZeroShot') (per-image prompts) or adapt it with "
                   "ConditionedEpisodicTTA (configs/_base_/tta/tpt_cocoop.py); methods that encode the class prompts "
                   'once without an image (TDA, DPE, MTA, Zero, TPS, prototype losses) cannot use it')


def image_major(tokens: ClassTokens, ctx: torch.Tensor) -> TextPrompts:
    """Class prompts of ``B`` contexts ``ctx`` ``[B, n, D]``: ``B * C`` rows, row ``b * C + c`` = context ``b``,
    class ``c`` (one vectorised scatter, no loop over the images)."""
    n_img, n_cls = ctx.shape[0], tokens.token_ids.shape[0]
    emb = tokens.embeddings.repeat(n_img, 1, 1)                    # [B * C, L, D]
    positions = tokens.positions.repeat(n_img, 1)                  # [B * C, n]
    rows = ctx.to(emb.dtype).repeat_interleave(n_cls, dim=0)       # [B * C, n, D]
    return TextPrompts(token_ids=tokens.token_ids.repeat(n_img, 1), embeddings=replace_positions(emb, rows, positions),
                       positions=positions)


@PROMPT_LEARNERS.register_module()
class CoCoOp(CoOp):
    """Args:
        n_ctx: learnable context tokens (CoCoOp: 4, the words of "a photo of a").
        ctx_init: words whose token embeddings initialise ``ctx``, or ``None`` for N(0, ``init_std``) vectors.
        init_std: std of the random context (``ctx_init=None``).
        meta_net_reduction: the meta-net's hidden width is ``embed_dim // meta_net_reduction`` (CoCoOp: 16).

    The meta-net's input is what :class:`~promptsync.models.PromptedCLIP` passes: the *normalised* image features of
    the frozen, unprompted image encoder (CoCoOp's ``CustomCLIP.forward``). The class token is at the end (CoCoOp
    builds ``[SOS] ctx [CLASS]. [EOS]``); one context for all classes.
    """

    branches = {'text': ('ctx', 'meta_net')}

    def __init__(self, backbone, n_ctx: int | None = 4, ctx_init: str | None = 'a photo of a', init_std: float = 0.02,
                 meta_net_reduction: int = 16, classnames: list[str] | None = None):
        vis_dim = int(backbone.embed_dim)
        if not (isinstance(meta_net_reduction, int) and 1 <= meta_net_reduction <= vis_dim):
            raise ConfigError(f'CoCoOp meta_net_reduction={meta_net_reduction!r} must be an integer in 1..{vis_dim} '
                              f'(the image feature width of {backbone.model_name})',
                              where='model.prompt_learner.meta_net_reduction', fix='use 16 (CoCoOp)')
        super().__init__(backbone, n_ctx=n_ctx, ctx_init=ctx_init, class_token_position='end', class_specific=False,
                         init_std=init_std, classnames=None)
        self.meta_net_reduction = meta_net_reduction
        hidden = vis_dim // meta_net_reduction
        self.meta_net = nn.Sequential(OrderedDict([
            ('linear1', nn.Linear(vis_dim, hidden)),
            ('relu', nn.ReLU()),
            ('linear2', nn.Linear(hidden, backbone.text_width))]))
        self.meta_net.to(self.ctx.device)
        if classnames is not None:
            self.set_classnames(classnames)

    @property
    def conditions_on_image(self) -> bool:
        return True

    def _refuse(self, what: str):
        raise ConfigError(f'{what} without image features: CoCoOp shifts its context by a meta-net of each image, so '
                          'class prompts (and class text features) exist only per image',
                          where=f'model.prompt_learner (type={type(self).__name__})', fix=NEEDS_IMAGE_FIX)

    def context(self, image_features: torch.Tensor) -> torch.Tensor:
        """``[B, n_ctx, D]``: ``ctx + meta_net(f_b)`` for the image features ``[B, E]`` (CoCoOp's ``ctx_shifted``)."""
        if image_features.dim() != 2 or image_features.shape[1] != self.meta_net.linear1.in_features:
            raise ValueError(f'CoCoOp conditions on image features [B, {self.meta_net.linear1.in_features}], got '
                             f'{tuple(image_features.shape)}')
        param = self.meta_net.linear1.weight
        bias = self.meta_net(image_features.to(param.device, param.dtype))   # [B, D]
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1)

    def forward(self, image_features: torch.Tensor | None = None) -> Prompts:
        """Prompts of every class for each image: text ``[B * C, L, D]``, image-major."""
        if not self.classnames:
            raise RuntimeError(f'{type(self).__name__}.set_classnames() was never called')
        if image_features is None:
            self._refuse('prompts asked for')
        return self.prompts_with_context(self.context(image_features))

    def prompts_with_context(self, ctx: torch.Tensor, classnames: list[str] | None = None) -> Prompts:
        """The class prompts of given contexts ``[B, n_ctx, D]`` (``B * C`` rows, image-major)."""
        return Prompts(text=image_major(self.class_tokens(classnames), ctx))

    def class_tokens(self, classnames: list[str] | None = None) -> ClassTokens:
        """Frozen token data of the current label space, or of ``classnames`` (one extra label space is kept)."""
        if classnames is None or list(classnames) == self.classnames:
            return ClassTokens(self.token_ids, self.positions, self.token_embeddings)
        key = tuple(classnames)
        if key not in self._other_tokens:
            self._other_tokens = {key: self._class_tokens(list(classnames))}
        return self._other_tokens[key]

    def prompts_for(self, classnames: list[str], image_features: torch.Tensor | None = None) -> Prompts:
        if image_features is None:
            self._refuse(f'prompts for {len(classnames)} other classes asked for')
        return self.prompts_with_context(self.context(image_features), classnames)

    def context_learner(self) -> 'CoCoOpContext':
        """A learner whose one parameter is a (per-image) context ``[n_ctx, D]`` in CoCoOp's layout (TPT+CoCoOp)."""
        return CoCoOpContext(self)


class CoCoOpContext(PromptLearner):
    """The per-image context TPT+CoCoOp tunes: parameter ``ctx`` ``[n_ctx, D]``, prompts = CoCoOp's layout with it.

    Not conditioned and not registered: built by :meth:`CoCoOp.context_learner`, which it references (not a
    submodule, so ``state_dict`` holds ``ctx`` only); the class tokens are the CoCoOp learner's. Its initial ``ctx``
    is CoCoOp's unshifted context; ``ConditionedEpisodicTTA`` overwrites it with ``ctx + meta_net(f)`` per image.
    """

    branches = {'text': ('ctx',)}

    def __init__(self, source: CoCoOp):
        super().__init__(source.backbone)
        object.__setattr__(self, '_source', source)
        self.ctx = nn.Parameter(source.ctx.detach().clone())
        self.classnames = list(source.classnames)

    @property
    def source(self) -> CoCoOp:
        return self._source

    def set_classnames(self, classnames: list[str]) -> None:
        if list(classnames) != self.source.classnames:
            self.source.set_classnames(classnames)
        self.classnames = list(classnames)

    def forward(self) -> Prompts:
        if self.classnames != self.source.classnames:
            raise RuntimeError('the CoCoOp learner was given other class names than its context learner')
        return self.source.prompts_with_context(self.ctx.unsqueeze(0))

    def prompts_for(self, classnames: list[str]) -> Prompts:
        return self.source.prompts_with_context(self.ctx.unsqueeze(0), list(classnames))
