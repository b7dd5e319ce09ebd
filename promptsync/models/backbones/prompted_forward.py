"""Prompted forward passes through open_clip's own modules (no fork of open_clip).

Both encoders run the model's ``resblocks`` one by one so that prompt tokens can be spliced into the
block inputs (MaPLe-style deep prompts). With no prompts they reproduce ``encode_text`` /
``encode_image`` exactly (tested to 1e-5).

Conventions (MaPLe, checked against its released code):

* text: the prompt learner supplies the full embedding sequence (shallow prompts included); a deep
  prompt for layer ``l >= 1`` *replaces* the tokens at ``prompt_positions`` of that layer's input, and
  pooling uses the original token ids (EOT argmax).
* text, exact shortcut (``truncate=True``): with a causal mask and end-of-text pooling, no token after the
  longest sequence's end-of-text token can reach a pooled token, so the encoder runs only the first
  :func:`text_run_length` positions (mask and positional embedding sliced to match); ``truncate=False`` runs
  the full context (the reference path).
* vision: shallow prompts are *appended* after the class/patch tokens (after the positional
  embedding, before ``ln_pre``); a deep prompt for layer ``l >= 1`` replaces the last ``n`` tokens of
  that layer's input. Prompt tokens are dropped before pooling.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def _check_deep(deep: Mapping[int, torch.Tensor] | None, n_layers: int, branch: str) -> dict:
    deep = dict(deep or {})
    bad = [k for k in deep if not (1 <= int(k) < n_layers)]
    if bad:
        raise ValueError(f'{branch} deep prompts given for layers {bad}; valid layers are 1..{n_layers - 1} '
                         '(layer 0 takes the shallow prompt)')
    return {int(k): v for k, v in deep.items()}


def run_block(blk: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None, batch_first: bool,
              grad_checkpointing: bool = False) -> torch.Tensor:
    """One residual block on batch-first ``x`` ``[B, L, D]`` whatever the block's own layout."""
    if not batch_first:
        x = x.transpose(0, 1)
    if grad_checkpointing and torch.is_grad_enabled():
        x = checkpoint(blk, x, None, None, attn_mask, use_reentrant=False)
    else:
        x = blk(x, attn_mask=attn_mask)
    return x if batch_first else x.transpose(0, 1)


def _expand_batch(prompt: torch.Tensor, batch: int, dtype: torch.dtype) -> torch.Tensor:
    """``[n, D]`` (shared) or ``[B, n, D]`` (per sample) -> ``[B, n, D]``."""
    prompt = prompt.to(dtype)
    if prompt.dim() == 2:
        return prompt.unsqueeze(0).expand(batch, -1, -1)
    if prompt.dim() == 3 and prompt.shape[0] in (1, batch):
        return prompt.expand(batch, -1, -1)
    raise ValueError(f'prompt of shape {tuple(prompt.shape)} does not fit a batch of {batch}')


def replace_positions(x: torch.Tensor, prompt: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Out-of-place ``x[b, positions[b, j]] = prompt[(b,) j]`` for ``x`` ``[B, L, D]``; differentiable."""
    batch, _, width = x.shape
    src = _expand_batch(prompt, batch, x.dtype)
    if positions.shape != src.shape[:2]:
        raise ValueError(f'prompt positions {tuple(positions.shape)} do not match prompt tokens '
                         f'{tuple(src.shape[:2])}')
    index = positions.to(x.device).unsqueeze(-1).expand(-1, -1, width)
    return x.scatter(1, index, src)


def _text_pool(x: torch.Tensor, token_ids: torch.Tensor, pool_type: str, eos_id: int | None) -> torch.Tensor:
    rows = torch.arange(x.shape[0], device=x.device)
    if pool_type == 'argmax':
        return x[rows, token_ids.argmax(dim=-1)]
    if pool_type == 'eos':
        return x[rows, (token_ids == eos_id).int().argmax(dim=-1)]
    if pool_type == 'first':
        return x[:, 0]
    if pool_type == 'last':
        return x[:, -1]
    raise ValueError(f"unsupported text pool type '{pool_type}'")


def _is_causal(mask: torch.Tensor | None) -> bool:
    """True for open_clip's causal mask: -inf strictly above the diagonal, 0 on and below it."""
    if mask is None or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return False
    upper = torch.triu(torch.ones_like(mask, dtype=torch.bool), diagonal=1)
    return bool(torch.isneginf(mask[upper]).all()) and bool((mask[~upper] == 0).all())


def text_run_length(model: nn.Module, token_ids: torch.Tensor, prompt_positions: torch.Tensor | None = None) -> int:
    """How many leading positions the text encoder must run for exact features of ``token_ids``.

    The longest sequence's pooled (end-of-text) position + 1 when the model's mask is causal and it pools at
    the end-of-text token; the full context otherwise (nothing can be dropped exactly).
    """
    full = token_ids.shape[1]
    pool = getattr(model, 'text_pool_type', 'argmax')
    if pool not in ('argmax', 'eos') or not _is_causal(getattr(model, 'attn_mask', None)):
        return full
    if pool == 'argmax':
        ends = token_ids.argmax(dim=-1)
    else:
        ends = (token_ids == getattr(model, 'text_eos_id', None)).int().argmax(dim=-1)
    length = int(ends.max()) + 1 if ends.numel() else full
    if prompt_positions is not None and prompt_positions.numel():
        length = max(length, int(prompt_positions.max()) + 1)
    return min(length, full)


def encode_text_prompted(model: nn.Module, token_ids: torch.Tensor, embeddings: torch.Tensor | None = None,
                         deep_prompts: Mapping[int, torch.Tensor] | None = None,
                         prompt_positions: torch.Tensor | None = None, normalize: bool = False,
                         truncate: bool = True) -> torch.Tensor:
    """Text features of an open_clip ``CLIP`` model with optional prompts.

    Args:
        token_ids: ``[N, L]`` token ids (placeholders where prompts go); used for pooling.
        embeddings: ``[N, L, D]`` input token embeddings (shallow prompts already in place);
            ``None`` = the model's token embedding of ``token_ids``.
        deep_prompts: ``{layer: [n, D] or [N, n, D]}`` replacing ``prompt_positions`` at that layer's input.
        prompt_positions: ``[N, n]`` positions of the prompt tokens in each sequence.
        truncate: run only the positions that reach the pooled tokens (exact; see :func:`text_run_length`).
    """
    transformer = model.transformer
    n_layers = len(transformer.resblocks)
    deep = _check_deep(deep_prompts, n_layers, 'text')
    if deep and prompt_positions is None:
        raise ValueError('text deep prompts need prompt_positions')
    cast = transformer.get_cast_dtype()
    x = model.token_embedding(token_ids) if embeddings is None else embeddings
    mask = model.attn_mask
    length = text_run_length(model, token_ids, prompt_positions) if truncate else token_ids.shape[1]
    if length < token_ids.shape[1]:
        x, mask = x[:, :length], mask[:length, :length]
    x = x.to(cast) + model.positional_embedding[:length].to(cast)
    batch_first = getattr(transformer, 'batch_first', False)
    ckpt = getattr(transformer, 'grad_checkpointing', False)
    for i, blk in enumerate(transformer.resblocks):
        if i in deep:
            x = replace_positions(x, deep[i], prompt_positions)
        x = run_block(blk, x, mask, batch_first, ckpt)
    x = model.ln_final(x)
    x = _text_pool(x, token_ids[:, :x.shape[1]], model.text_pool_type, getattr(model, 'text_eos_id', None))
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return F.normalize(x, dim=-1) if normalize else x


def encode_image_prompted(visual: nn.Module, images: torch.Tensor, shallow_prompts: torch.Tensor | None = None,
                          deep_prompts: Mapping[int, torch.Tensor] | None = None,
                          normalize: bool = False) -> torch.Tensor:
    """Image features of an open_clip ``VisionTransformer`` with appended (shallow) and deep prompts.

    Args:
        shallow_prompts: ``[n, W]`` or ``[B, n, W]`` tokens appended before ``ln_pre``.
        deep_prompts: ``{layer: [n, W] or [B, n, W]}`` replacing the last ``n`` tokens at that layer.
    """
    transformer = visual.transformer
    n_layers = len(transformer.resblocks)
    deep = _check_deep(deep_prompts, n_layers, 'vision')
    if deep and shallow_prompts is None:
        raise ValueError('vision deep prompts replace the appended shallow prompt tokens; give shallow_prompts')
    cast = transformer.get_cast_dtype()
    x = visual.conv1(images.to(cast))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    n_prompt = 0
    if shallow_prompts is not None:
        prompts = _expand_batch(shallow_prompts, x.shape[0], x.dtype)
        n_prompt = prompts.shape[1]
        x = torch.cat([x, prompts], dim=1)
    x = visual.ln_pre(x)
    batch_first = getattr(transformer, 'batch_first', False)
    ckpt = getattr(transformer, 'grad_checkpointing', False)
    for i, blk in enumerate(transformer.resblocks):
        if i in deep:
            prompt = _expand_batch(deep[i], x.shape[0], x.dtype)
            if prompt.shape[1] != n_prompt:
                raise ValueError(f'deep vision prompt at layer {i} has {prompt.shape[1]} tokens, the shallow '
                                 f'prompt has {n_prompt}')
            x = torch.cat([x[:, :-n_prompt], prompt], dim=1)
        x = run_block(blk, x, None, batch_first, ckpt)
    if n_prompt:
        x = x[:, :-n_prompt]
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return F.normalize(pooled, dim=-1) if normalize else pooled
