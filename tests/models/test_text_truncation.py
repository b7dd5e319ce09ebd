"""The text encoder's exact shortcut: running only up to the longest end-of-text token changes nothing.

Compared with the full-context run (the reference path, ``truncate=False``) on random weights: features,
gradients to the shallow and deep prompts, and the run length against a hand count of the token ids.
"""
import pytest
import torch

from promptsync.models import PromptedCLIP
from promptsync.models.backbones.prompted_forward import encode_text_prompted, text_run_length
from promptsync.models.prompt_learners import CoOp, MaPLe

from ..conftest import tiny_backbone

NAMES = ['cat', 'dog', 'golden retriever', 'tabby cat']


def _learner(kind, backbone):
    learner = (MaPLe if kind == 'maple' else CoOp)(backbone, classnames=NAMES)
    with torch.no_grad():  # move the prompts off their initialisation so that every gradient is generic
        for p in learner.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return learner


def _features_and_grads(backbone, learner, truncate):
    backbone.truncate_text = truncate
    learner.zero_grad(set_to_none=True)
    feats = PromptedCLIP(backbone, learner).text_features()
    (feats * torch.linspace(-1, 1, feats.numel()).view_as(feats)).sum().backward()
    return feats.detach(), {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}


@pytest.mark.parametrize('kind', ['coop', 'maple'])
def test_truncated_text_encoder_equals_full_context(kind):
    backbone = tiny_backbone(seed=3)
    learner = _learner(kind, backbone)
    full, full_grads = _features_and_grads(backbone, learner, truncate=False)
    cut, cut_grads = _features_and_grads(backbone, learner, truncate=True)
    assert torch.allclose(cut, full, atol=2e-6), (cut - full).abs().max()
    assert set(cut_grads) == set(full_grads) and len(full_grads) >= (3 if kind == "maple" else 1)
    for name in full_grads:
        assert full_grads[name].abs().max() > 0, name
        assert torch.allclose(cut_grads[name], full_grads[name], atol=1e-6, rtol=1e-4), name


def test_run_length_is_the_longest_end_of_text_position_plus_one(backbone):
    ids = backbone.tokenize(['a photo of a cat.', 'a photo of a golden retriever.'])
    # hand count: start token, 'a photo of a golden retriever .' (7 words/punctuation), end token -> 9 positions
    words = len(backbone.tokenizer.encode('a photo of a golden retriever.'))
    assert text_run_length(backbone.model, ids) == words + 2 < backbone.context_length
    # prompt positions beyond the end token are kept (they could not matter, but replace_positions indexes them)
    far = torch.tensor([[12, 13], [12, 13]])
    assert text_run_length(backbone.model, ids, far) == 14


def test_no_shortcut_without_a_causal_mask_or_with_last_token_pooling(backbone):
    model = backbone.model
    ids = backbone.tokenize(['a photo of a cat.'])
    mask, pool = model.attn_mask, model.text_pool_type
    try:
        model.attn_mask = torch.zeros_like(mask)  # bidirectional attention: later tokens reach the pooled one
        assert text_run_length(model, ids) == backbone.context_length
        model.attn_mask = mask
        model.text_pool_type = 'last'
        assert text_run_length(model, ids) == backbone.context_length
    finally:
        model.attn_mask, model.text_pool_type = mask, pool


def test_bidirectional_model_keeps_its_features(backbone):
    """Without a causal mask the full context is run, so features equal the reference with truncate on."""
    model = backbone.model
    ids = backbone.tokenize(['a photo of a cat.', 'a dog.'])
    mask = model.attn_mask
    try:
        model.attn_mask = torch.zeros_like(mask)
        with torch.no_grad():
            ref = encode_text_prompted(model, ids, truncate=False)
            assert torch.equal(encode_text_prompted(model, ids, truncate=True), ref)
    finally:
        model.attn_mask = mask


def test_text_grad_checkpointing_gives_the_same_gradients():
    base = tiny_backbone(seed=4)
    learner = _learner('maple', base)
    ref, ref_grads = _features_and_grads(base, learner, truncate=True)
    base.model.transformer.grad_checkpointing = True
    try:
        feats, grads = _features_and_grads(base, learner, truncate=True)
    finally:
        base.model.transformer.grad_checkpointing = False
    assert torch.allclose(feats, ref, atol=1e-6)
    for name in ref_grads:
        assert torch.allclose(grads[name], ref_grads[name], atol=1e-6, rtol=1e-5), name


def test_text_switches_must_be_booleans():
    from promptsync.errors import ConfigError
    from promptsync.models.backbones import OpenCLIP
    with pytest.raises(ConfigError, match="truncate_text must be True or False, got 'yes'"):
        OpenCLIP('ps-tiny-vit', pretrained=None, precision='fp32', truncate_text='yes')
