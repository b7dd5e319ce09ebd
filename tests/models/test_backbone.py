"""OpenCLIP backbone: exact reproduction without prompts, prompt injection against a naive loop, taps, loading."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from promptsync.models.backbones import OpenCLIP

from ..conftest import TINY, tiny_backbone


def naive_text(model, ids, emb, deep, n_ctx):
    """MaPLe text encoder written out by hand: replace positions 1..n_ctx with slicing, per layer."""
    x = emb + model.positional_embedding
    for i, blk in enumerate(model.transformer.resblocks):
        if i in deep:
            x = torch.cat([x[:, :1], deep[i].expand(x.shape[0], -1, -1), x[:, 1 + n_ctx:]], dim=1)
        x = blk(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ model.text_projection


def naive_image(visual, images, shallow, deep):
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], 1) + visual.positional_embedding
    x = torch.cat([x, shallow.expand(x.shape[0], -1, -1)], 1)
    x = visual.ln_pre(x)
    n = shallow.shape[0]
    for i, blk in enumerate(visual.transformer.resblocks):
        if i in deep:
            x = torch.cat([x[:, :-n], deep[i].expand(x.shape[0], -1, -1)], 1)
        x = blk(x)
    return visual.ln_post(x[:, 0]) @ visual.proj


def test_widths_read_from_model(backbone):
    assert (backbone.text_width, backbone.vision_width, backbone.embed_dim) == (32, 64, 32)
    assert (backbone.n_text_layers, backbone.n_vision_layers, backbone.context_length) == (3, 3, 16)
    assert backbone.supports_visual_prompts


def test_frozen_and_eval(backbone):
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not backbone.model.training
    backbone.eval()


@torch.no_grad()
def test_empty_prompts_reproduce_open_clip(backbone):
    ids = backbone.tokenize(['a photo of a dog.', 'a drawing of a golden retriever.', 'x'])
    ref = backbone.model.encode_text(ids)
    assert torch.allclose(backbone.encode_text(ids), ref, atol=1e-5)
    assert torch.allclose(backbone.encode_text(ids, embeddings=backbone.embed_tokens(ids)), ref, atol=1e-5)
    images = torch.randn(4, 3, 32, 32)
    ref_img = backbone.model.encode_image(images)
    assert torch.allclose(backbone.encode_image(images), ref_img, atol=1e-5)
    # the prompted path with zero prompt tokens is also open_clip's forward
    from promptsync.models.backbones.prompted_forward import encode_image_prompted
    out = encode_image_prompted(backbone.visual, images, torch.zeros(0, backbone.vision_width))
    assert torch.allclose(out, ref_img, atol=1e-5)


@torch.no_grad()
def test_deep_prompts_match_naive_loop(backbone):
    torch.manual_seed(1)
    n = 2
    ids = backbone.tokenize(['X X photo of a cat.', 'X X photo of a dog.'])
    emb = backbone.embed_tokens(ids).clone()
    emb[:, 1:1 + n] = torch.randn(n, backbone.text_width)
    deep_t = {1: torch.randn(n, backbone.text_width), 2: torch.randn(n, backbone.text_width)}
    pos = torch.tensor([[1, 2], [1, 2]])
    out = backbone.encode_text(ids, emb, deep_t, pos)
    assert torch.allclose(out, naive_text(backbone.model, ids, emb, deep_t, n), atol=1e-5)
    assert not torch.allclose(out, backbone.encode_text(ids, emb), atol=1e-3)  # the deep prompts matter

    images = torch.randn(3, 3, 32, 32)
    shallow = torch.randn(n, backbone.vision_width)
    deep_v = {1: torch.randn(n, backbone.vision_width), 2: torch.randn(n, backbone.vision_width)}
    out = backbone.encode_image(images, shallow, deep_v)
    assert torch.allclose(out, naive_image(backbone.visual, images, shallow, deep_v), atol=1e-5)


def test_per_sample_vision_prompts_match_shared(backbone):
    images = torch.randn(2, 3, 32, 32)
    shallow = torch.randn(2, backbone.vision_width)
    with torch.no_grad():
        shared = backbone.encode_image(images, shallow)
        per_sample = backbone.encode_image(images, shallow.expand(2, -1, -1))
    assert torch.allclose(shared, per_sample, atol=1e-6)


def test_deep_prompt_errors(backbone):
    ids = backbone.tokenize(['X X cat.'])
    with pytest.raises(ValueError, match='valid layers are 1..2'):
        backbone.encode_text(ids, deep_prompts={0: torch.zeros(2, 32)}, prompt_positions=torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match='shallow'):
        backbone.encode_image(torch.randn(1, 3, 32, 32), None, {1: torch.zeros(2, 64)})


def test_vision_taps_record_block_inputs_and_keep_grad(backbone):
    images = torch.randn(3, 3, 32, 32)
    shallow = torch.randn(2, backbone.vision_width, requires_grad=True)
    visual = backbone.visual
    with backbone.taps('vision', [0, 2]) as taps:
        backbone.encode_image(images, shallow)
    tokens = taps.tokens()
    assert set(tokens) == {0, 2}
    assert tokens[0].shape == (3, 17 + 2, backbone.vision_width)
    # layer 0 = ln_pre of the embeddings with the appended prompt
    with torch.no_grad():
        x = visual.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.expand(3, 1, -1), x], 1) + visual.positional_embedding
        x = visual.ln_pre(torch.cat([x, shallow.detach().expand(3, -1, -1)], 1))
    assert torch.allclose(tokens[0].detach(), x, atol=1e-5)
    tokens[2].pow(2).mean().backward()
    assert shallow.grad is not None and shallow.grad.abs().sum() > 0
    for blk in visual.transformer.resblocks:  # hooks are gone once the block closes
        assert not blk._forward_pre_hooks and not blk._forward_hooks


def test_text_taps_and_bad_layers(backbone):
    ids = backbone.tokenize(['a cat.'])
    with backbone.taps('text', [1], point='output') as taps:
        backbone.encode_text(ids)
    assert taps[1].shape == (1, 5, backbone.text_width)  # start, 'a cat .', end: the positions the encoder runs
    backbone.truncate_text = False
    try:
        with backbone.taps('text', [1], point='output') as taps:
            backbone.encode_text(ids)
    finally:
        backbone.truncate_text = True
    assert taps[1].shape == (1, 16, backbone.text_width)
    with pytest.raises(ValueError, match='out of range'):
        with backbone.taps('vision', [3]):
            pass


def test_local_checkpoint_loads_through_backbone(tmp_path):
    src = tiny_backbone(seed=3)
    state = {k: v.contiguous() for k, v in src.model.state_dict().items()}
    st_path = tmp_path / 'tiny.safetensors'
    save_file(state, str(st_path))
    pt_path = tmp_path / 'tiny.pt'
    torch.save(state, pt_path)
    for path in (st_path, pt_path):
        loaded = OpenCLIP(TINY, pretrained=str(path), precision='fp32')
        for k, v in loaded.model.state_dict().items():
            assert torch.equal(v, state[k]), k


def test_loading_errors_are_actionable(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        OpenCLIP(TINY, pretrained=str(tmp_path / 'missing.bin'))
    with pytest.raises(ValueError, match='known tags'):
        OpenCLIP('ViT-B-16-quickgelu', pretrained='no-such-tag')
    with pytest.raises(ValueError, match='Close names'):
        OpenCLIP('ViT-B-16-quickgeluu')


def test_offline_pretrained_tag_error_names_model_and_fix(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(RuntimeError) as err:
        OpenCLIP('ViT-B-16-quickgelu', pretrained='openai')
    msg = str(err.value)
    assert "'openai'" in msg and 'ViT-B-16-quickgelu' in msg and 'model.backbone.pretrained=' in msg


def test_quick_gelu_follows_the_pretrained_tag():
    import open_clip
    assert OpenCLIP._resolve_quick_gelu(open_clip, 'ViT-B-16', 'openai', None) is True
    assert OpenCLIP._resolve_quick_gelu(open_clip, 'ViT-B-16-quickgelu', 'openai', None) is False
    assert OpenCLIP._resolve_quick_gelu(open_clip, 'ViT-B-16', 'laion2b_s34b_b88k', None) is False
    assert OpenCLIP._resolve_quick_gelu(open_clip, 'ViT-B-16', 'openai', False) is False


def test_resnet_tower_has_no_visual_prompts(tmp_path):
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    path = tmp_path / 'ps-tiny-rn-test.json'
    path.write_text(json.dumps(cfg))
    rn = OpenCLIP('ps-tiny-rn-test', model_config=str(path), precision='fp32')
    assert not rn.supports_visual_prompts
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(rn.encode_image(images), rn.model.encode_image(images), atol=1e-5)
    with pytest.raises(ValueError, match='ViT image tower'):
        rn.encode_image(images, torch.zeros(2, 16))
    from promptsync.models.prompt_learners import MaPLe
    with pytest.raises(ValueError, match='ViT image tower'):
        MaPLe(rn)


def test_invalid_precision():
    with pytest.raises(ValueError, match='precision'):
        OpenCLIP(TINY, precision='fp8')


def test_normalize_flag(backbone):
    ids = backbone.tokenize(['a cat.'])
    with torch.no_grad():
        assert torch.allclose(backbone.encode_text(ids, normalize=True), F.normalize(backbone.encode_text(ids), dim=-1))
