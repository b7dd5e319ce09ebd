"""CoOp: learnable context tokens on the text branch (also TPT's prompt)."""
from __future__ import annotations

import torch
from torch import nn

from promptsync.models.backbones.prompted_forward import replace_positions
from promptsync.registry import PROMPT_LEARNERS

from .base import PromptLearner, Prompts, TextPrompts
from .class_prompts import ClassTokens, build_layout, context_words


@PROMPT_LEARNERS.register_module()
class CoOp(PromptLearner):
    """Context vectors ``ctx`` ``[n_ctx, D_text]`` (``[C, n_ctx, D_text]`` when ``class_specific``).

    Args:
        n_ctx: learnable tokens; ``None`` = every token of ``ctx_init``.
        ctx_init: words whose token embeddings initialise the context (``'a photo of a'``), or
            ``None`` for N(0, ``init_std``) vectors.
        class_token_position: 'end' | 'middle' | 'front' (the last two need ``ctx_init=None``).
        class_specific: one context per class (CoOp's CSC).
    """

    branches = {'text': ('ctx',)}

    def __init__(self, backbone, n_ctx: int | None = None, ctx_init: str | None = 'a photo of a',
                 class_token_position: str = 'end', class_specific: bool = False, init_std: float = 0.02,
                 classnames: list[str] | None = None):
        super().__init__(backbone)
        tok = backbone.tokenizer
        self.prefix, self.n_ctx = context_words(tok, ctx_init, n_ctx)
        self.ctx_init = ctx_init
        self.class_token_position = class_token_position
        self.class_specific = class_specific
        self.init_std = init_std
        width = backbone.text_width
        if ctx_init is None:
            init = torch.empty(self.n_ctx, width).normal_(std=init_std)
        else:
            with torch.no_grad():
                ids = backbone.tokenize([self.prefix])
                init = backbone.embed_tokens(ids)[0, 1:1 + self.n_ctx].float().cpu()
        self._ctx_init_vectors = init
        if class_specific:  # class-specific contexts need the class count: created by set_classnames
            self.register_parameter('ctx', None)
        else:
            self.ctx = nn.Parameter(init.clone())
        for name in ('token_ids', 'positions'):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer('token_embeddings', torch.zeros(0), persistent=False)
        self._other_tokens: dict[tuple, ClassTokens] = {}
        if classnames is not None:
            self.set_classnames(classnames)

    def _class_tokens(self, classnames: list[str]) -> ClassTokens:
        bb = self.backbone
        layout = build_layout(bb.tokenizer, classnames, self.prefix, self.n_ctx, self.class_token_position,
                              bb.context_length)
        device = bb.device
        with torch.no_grad():
            embeddings = bb.embed_tokens(layout.token_ids.to(device)).detach()
        return ClassTokens(layout.token_ids.to(device), layout.positions.to(device), embeddings)

    def set_classnames(self, classnames: list[str]) -> None:
        tokens = self._class_tokens(classnames)
        self.token_ids, self.positions, self.token_embeddings = tokens.token_ids, tokens.positions, tokens.embeddings
        if self.class_specific:
            if self.ctx is not None and self.ctx.shape[0] != len(classnames):
                raise ValueError(f'class-specific context was built for {self.ctx.shape[0]} classes; '
                                 f'cannot switch to {len(classnames)} classes')
            if self.ctx is None:
                vecs = self._ctx_init_vectors.unsqueeze(0).repeat(len(classnames), 1, 1)
                if self.ctx_init is None:
                    vecs.normal_(std=self.init_std)
                self.ctx = nn.Parameter(vecs.to(tokens.embeddings.device))
        self.classnames = list(classnames)
        self._other_tokens = {}

    def prompts_for(self, classnames: list[str]) -> Prompts:
        """Prompts for another label space with the same learnable context (e.g. a proxy dataset's classes)."""
        if list(classnames) == self.classnames:
            return self()
        if self.class_specific:
            raise ValueError('class-specific contexts exist only for the classes they were built for')
        key = tuple(classnames)
        if key not in self._other_tokens:
            self._other_tokens = {key: self._class_tokens(list(classnames))}  # keep one extra label space
        return self._build_prompts(self._other_tokens[key])

    def _build_prompts(self, tokens: ClassTokens) -> Prompts:
        embeddings = replace_positions(tokens.embeddings, self.ctx, tokens.positions)
        return Prompts(text=TextPrompts(token_ids=tokens.token_ids, embeddings=embeddings, positions=tokens.positions))

    def forward(self) -> Prompts:
        if not self.classnames:
            raise RuntimeError(f'{type(self).__name__}.set_classnames() was never called')
        return self._build_prompts(ClassTokens(self.token_ids, self.positions, self.token_embeddings))
