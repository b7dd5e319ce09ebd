"""Prompt checkpoints: the MaPLe/PromptAlign release format, conversion, strict loading with clear errors."""
import pytest
import torch

from promptsync.models.prompt_learners import CoOp, MaPLe
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint, read_prompt_checkpoint

from ..conftest import CLASSES
from ..tools.helpers import load_tool


def release_checkpoint(path, depth=3, width=32, vwidth=64, n_ctx=2, n_cls=7, half=True):
    """A Dassl checkpoint as MaPLe's trainer saves it: the whole CustomCLIP state dict + epoch + optimizer."""
    g = torch.Generator().manual_seed(0)
    dt = torch.float16 if half else torch.float32
    sd = {'prompt_learner.ctx': torch.randn(n_ctx, width, generator=g).to(dt),
          'prompt_learner.proj.weight': torch.randn(vwidth, width, generator=g).to(dt),
          'prompt_learner.proj.bias': torch.randn(vwidth, generator=g).to(dt),
          'prompt_learner.token_prefix': torch.randn(n_cls, 1, width, generator=g).to(dt),
          'prompt_learner.token_suffix': torch.randn(n_cls, 10, width, generator=g).to(dt),
          'image_encoder.conv1.weight': torch.randn(4, 3, 2, 2, generator=g),
          'text_encoder.positional_embedding': torch.randn(16, width, generator=g),
          'logit_scale': torch.tensor(4.6)}
    for j in range(depth - 1):
        sd[f'prompt_learner.compound_prompts_text.{j}'] = torch.randn(n_ctx, width, generator=g).to(dt)
        sd[f'prompt_learner.compound_prompt_projections.{j}.weight'] = torch.randn(vwidth, width, generator=g).to(dt)
        sd[f'prompt_learner.compound_prompt_projections.{j}.bias'] = torch.randn(vwidth, generator=g).to(dt)
    torch.save({'state_dict': sd, 'epoch': 2, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.0026}]}}, path)
    return sd


def test_release_checkpoint_loads_into_maple(tmp_path, backbone):
    sd = release_checkpoint(tmp_path / 'model.pth.tar-2')
    maple = MaPLe(backbone, depth=3, classnames=CLASSES)
    meta = load_prompt_checkpoint(maple, tmp_path / 'model.pth.tar-2')
    for key, value in maple.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, sd[f'prompt_learner.{key}'].float()), key
    assert '"frozen_clip_weights": 3' in meta['dropped'] and '"class_token_buffers": 2' in meta['dropped']
    assert len(meta['sha256']) == 64


def test_convert_tool_round_trip(tmp_path, backbone):
    sd = release_checkpoint(tmp_path / 'model.pth.tar-2')
    tool = load_tool('convert_checkpoint')
    info = tool.main([str(tmp_path / 'model.pth.tar-2'), str(tmp_path / 'maple.safetensors')])
    state, meta = read_prompt_checkpoint(tmp_path / 'maple.safetensors')
    assert meta['format'] == 'promptsync-prompt-learner' and meta['source_sha256'] == info['source_sha256']
    assert set(state) == {k[len('prompt_learner.'):] for k in sd if k.startswith('prompt_learner.')} - \
        {'token_prefix', 'token_suffix'}
    maple = MaPLe(backbone, depth=3, classnames=CLASSES)
    load_prompt_checkpoint(maple, tmp_path / 'maple.safetensors')
    assert torch.equal(maple.ctx.data, sd['prompt_learner.ctx'].float())


def test_convert_tool_checks_against_a_config(tmp_path, backbone):
    from pathlib import Path
    release_checkpoint(tmp_path / 'ck.pth', width=512, vwidth=768)
    tool = load_tool('convert_checkpoint')
    cfg = str(Path(__file__).resolve().parents[2] / 'configs/_base_/models/maple_vit_b16.py')
    with pytest.raises(ValueError, match='width 512 vs 32'):
        tool.main([str(tmp_path / 'ck.pth'), str(tmp_path / 'out.safetensors'), '--config', cfg, '--cfg-options',
                   'model.backbone.model_name=ps-tiny-vit', 'model.backbone.pretrained=None'])
    assert not (tmp_path / 'out.safetensors').exists()



def test_convert_tool_checks_class_specific_contexts_against_a_config(tmp_path):
    """A CoOp CSC checkpoint (ctx [C, n, D]) is checked against a learner over C classes, not refused for one."""
    from pathlib import Path
    ctx = torch.randn(3, 4, 32)
    torch.save({'state_dict': {'ctx': ctx, 'token_prefix': torch.zeros(3, 1, 32)}, 'epoch': 50}, tmp_path / 'csc.pth')
    cfg = tmp_path / 'csc_cfg.py'
    base = Path(__file__).resolve().parents[2] / 'configs/_base_/models/coop_vit_b16.py'
    cfg.write_text(f"_base_ = [{str(base)!r}]\nmodel = dict(backbone=dict(model_name='ps-tiny-vit', pretrained=None), "
                   "prompt_learner=dict(class_specific=True, ctx_init=None, n_ctx=4))\n")
    info = load_tool('convert_checkpoint').main([str(tmp_path / 'csc.pth'), str(tmp_path / 'csc.safetensors'),
                                                 '--config', str(cfg)])
    assert info['checked_against'].startswith('CoOp of')
    assert torch.equal(read_prompt_checkpoint(tmp_path / 'csc.safetensors')[0]['ctx'], ctx)


def test_mismatches_are_explained(tmp_path, backbone):
    release_checkpoint(tmp_path / 'd9.pth', depth=9)
    with pytest.raises(KeyError, match='depth=9'):
        load_prompt_checkpoint(MaPLe(backbone, depth=3, classnames=CLASSES), tmp_path / 'd9.pth')
    release_checkpoint(tmp_path / 'wide.pth', width=512, vwidth=768)
    with pytest.raises(ValueError, match='another backbone'):
        load_prompt_checkpoint(MaPLe(backbone, depth=3, classnames=CLASSES), tmp_path / 'wide.pth')
    with pytest.raises(KeyError, match='unexpected'):
        load_prompt_checkpoint(CoOp(backbone, n_ctx=2, ctx_init='a photo', classnames=CLASSES), tmp_path / 'd9.pth')
    csc = {'prompt_learner.ctx': torch.zeros(10, 4, 32)}
    torch.save({'state_dict': csc}, tmp_path / 'csc.pth')
    with pytest.raises(ValueError, match='for 10 classes, this label space has 4'):
        load_prompt_checkpoint(CoOp(backbone, n_ctx=4, ctx_init=None, class_specific=True, classnames=CLASSES),
                               tmp_path / 'csc.pth')
    with pytest.raises(FileNotFoundError, match='convert_checkpoint'):
        load_prompt_checkpoint(MaPLe(backbone, classnames=CLASSES), tmp_path / 'missing.pth')


class NotATensor:
    pass


def test_pickled_objects_are_never_loaded(tmp_path, backbone):
    torch.save({'state_dict': {'prompt_learner.ctx': torch.zeros(2, 32)}, 'scheduler': NotATensor()},
               tmp_path / 'pickle.pth')
    with pytest.raises(ValueError, match='never unpickles'):
        load_prompt_checkpoint(MaPLe(backbone, classnames=CLASSES), tmp_path / 'pickle.pth')


def test_prompts_for_another_label_space(backbone):
    maple = MaPLe(backbone, classnames=CLASSES)
    with torch.no_grad():
        maple.ctx.add_(0.5)
    other = MaPLe(backbone, classnames=['cow', 'horse'])
    other.load_state_dict(maple.state_dict())
    a, b = maple.prompts_for(['cow', 'horse']), other()
    assert torch.equal(a.text.token_ids, b.text.token_ids)
    assert torch.allclose(a.text.embeddings, b.text.embeddings)
    assert torch.allclose(a.vision.shallow, b.vision.shallow)
    assert maple.prompts_for(CLASSES).text.embeddings.shape[0] == len(CLASSES)
