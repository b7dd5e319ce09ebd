"""Tiny-CLIP pretraining: a one-epoch run writes a checkpoint the backbone loads, with its provenance; the shipped
checkpoint loads through the normal backbone path and matches its recorded hash."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from promptsync.benchmarks.shapes.pretrain import _augment
from promptsync.engine import pretrain_clip
from promptsync.models.backbones import OpenCLIP
from promptsync.models.prompt_learners.checkpoint import file_sha256

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / 'promptsync/benchmarks/shapes/assets'


def test_one_epoch_pretraining_writes_a_loadable_checkpoint(tmp_path):
    cfg = Config(dict(
        model_name='ps-tiny-vit', seed=0, log_level='WARNING', work_dir=str(tmp_path / 'work'),
        data=dict(per_style=dict(photo=60, sketch=20), image_size=32, workers=1, eval_root=str(tmp_path / 'eval'),
                  eval_per_class=1, test_per_class=1),
        train=dict(epochs=1, batch_size=16, lr=1e-3, warmup_steps=2),
        output=dict(dir=str(tmp_path / 'out'), name='tiny', dtype='float16')))
    ckpt = pretrain_clip(cfg)
    prov = json.loads((tmp_path / 'out' / 'tiny.json').read_text())
    assert prov['sha256'] == file_sha256(ckpt) and prov['data']['images'] == 80 and len(prov['epochs']) == 1
    assert set(prov['zero_shot']['test']) == {'photo', 'sketch', 'cartoon', 'corrupted'}
    loaded = OpenCLIP('ps-tiny-vit', pretrained=str(ckpt), precision='fp32')
    assert loaded.model.visual.conv1.weight.dtype == torch.float32


def test_augment_translates_and_flips_exactly():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    gen = torch.Generator().manual_seed(0)
    out = _augment(x, pad=0, flip=True, gen=gen)
    for i in range(2):
        assert torch.equal(out[i], x[i].float()) or torch.equal(out[i], x[i].flip(-1).float())
    shifted = _augment(x, pad=1, flip=False, gen=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x.float(), (1, 1, 1, 1), mode='replicate')
    for i in range(2):  # every output is a 4x4 window of the padded image
        assert any(torch.equal(shifted[i], padded[i, :, r:r + 4, c:c + 4]) for r in range(3) for c in range(3))


@pytest.mark.skipif(not (ASSETS / 'ps-shapes-vit.safetensors').exists(), reason='no shipped checkpoint')
def test_shipped_checkpoint_and_its_provenance():
    prov = json.loads((ASSETS / 'ps-shapes-vit.json').read_text())
    assert file_sha256(ASSETS / 'ps-shapes-vit.safetensors') == prov['sha256']
    assert prov['zero_shot']['test']['photo'] >= 80  # the bar, measured on held-out source images
    for domain in ('sketch', 'cartoon', 'corrupted'):
        assert prov['zero_shot']['test'][domain] < prov['zero_shot']['test']['photo'] - 30
    backbone = OpenCLIP('ps-shapes-vit', pretrained=str(ASSETS / 'ps-shapes-vit.safetensors'), precision='fp32')
    assert backbone.vision_width == 64 and backbone.n_vision_layers == 4 and backbone.supports_visual_prompts
