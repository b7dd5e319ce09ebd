"""Token layout of learnable-context class prompts (CoOp), built once per label space.

Each class prompt is tokenized with placeholder tokens where the learnable context goes; the
positions of those tokens are kept as an index tensor ``[C, n_ctx]``, so inserting the context is one
vectorised scatter for every class position ('end', 'middle', 'front'), with no per-class loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import check_class_prompts, clean_classname

PLACEHOLDER = 'X'
POSITIONS = ('end', 'middle', 'front')


@dataclass
class ClassTokens:
    """Frozen token data of one label space: ids ``[C, L]``, context positions ``[C, n]``, embeddings ``[C, L, D]``."""
    token_ids: torch.Tensor
    positions: torch.Tensor
    embeddings: torch.Tensor


@dataclass
class ClassPromptLayout:
    texts: list[str]
    token_ids: torch.Tensor    # [C, L]
    positions: torch.Tensor    # [C, n_ctx]


def context_words(tokenizer, ctx_init: str | None, n_ctx: int | None) -> tuple[str, int]:
    """Prompt prefix text and the number of learnable tokens.

    ``ctx_init=None``: ``n_ctx`` placeholder tokens (random init). With ``ctx_init``, the first
    ``n_ctx`` tokens of it are learnable (all of them when ``n_ctx`` is None); the rest stay fixed,
    as in MaPLe (2 learnable tokens of "a photo of a").
    """
    if ctx_init is None:
        if not n_ctx or n_ctx < 1:
            raise ValueError('give n_ctx >= 1 when ctx_init is None')
        return ' '.join([PLACEHOLDER] * n_ctx), n_ctx
    ctx_init = ctx_init.replace('_', ' ').strip()
    n_init = len(tokenizer.encode(ctx_init))
    if n_ctx is None:
        n_ctx = n_init
    if not 1 <= n_ctx <= n_init:
        raise ValueError(f"n_ctx={n_ctx} but ctx_init '{ctx_init}' has {n_init} tokens; "
                         f'use 1 <= n_ctx <= {n_init}, or ctx_init=None for {n_ctx} randomly initialised tokens')
    return ctx_init, n_ctx


def build_layout(tokenizer, classnames: list[str], prefix: str, n_ctx: int, position: str,
                 context_length: int) -> ClassPromptLayout:
    """Texts, token ids and context positions of ``"<ctx> <class>."`` prompts (or middle/front)."""
    if position not in POSITIONS:
        raise ValueError(f"class_token_position must be one of {POSITIONS}, got '{position}'")
    names = [clean_classname(c) for c in classnames]
    name_lens = [len(tokenizer.encode(n)) for n in names]
    placeholder_words = prefix.split(' ')
    if position == 'end':
        texts = [f'{prefix} {n}.' for n in names]
        pos = [list(range(1, 1 + n_ctx)) for _ in names]
    else:
        if prefix != ' '.join([PLACEHOLDER] * n_ctx):
            raise ValueError(f"class_token_position='{position}' needs ctx_init=None (random context)")
        half = n_ctx // 2 if position == 'middle' else 0
        texts = [' '.join(placeholder_words[:half] + [n] + placeholder_words[half:]) + '.' for n in names]
        pos = [list(range(1, 1 + half)) + list(range(1 + half + k, 1 + k + n_ctx)) for k in name_lens]
    token_ids = tokenizer(texts)
    check_class_prompts(tokenizer, classnames, texts, token_ids)
    positions = torch.tensor(pos, dtype=torch.long)
    if positions.numel() and int(positions.max()) >= context_length - 1:
        raise ValueError(f'context tokens fall beyond the context length {context_length}')
    if prefix.startswith(PLACEHOLDER):
        ph = tokenizer.encode(PLACEHOLDER)
        if len(ph) == 1 and not bool((token_ids.gather(1, positions) == ph[0]).all()):
            raise RuntimeError('placeholder tokens are not where the layout expects them (tokenizer merged them)')
    return ClassPromptLayout(texts=texts, token_ids=token_ids, positions=positions)
