"""tools/compute_prototypes.py against a naive one-image-at-a-time numpy computation; resume; metadata."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from promptsync import engine as proto_api
from promptsync.datasets import ImageFolder
from promptsync.datasets.loading import load_rgb
from promptsync.models import build_model
from promptsync.models.prompt_learners.checkpoint import save_prompt_checkpoint
from promptsync.prototypes import BankAccumulator, PrototypeBank
from promptsync.registry import TRANSFORMS
from promptsync.utils.seeding import seed_everything

from ..conftest import TINY, interrupt
from ..tools.helpers import load_tool

LAYERS = (0, 2)


def make_cfg(folder, out, ckpt=None, **proto):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3), prompt_checkpoint=ckpt),
        proxy_data=dict(dataset=dict(type='ImageFolder', root=str(folder)), batch_size=5, num_workers=0),
        prototypes=dict(dict(file=str(out), layers=LAYERS, per_class=True, token_stats='per_token'), **proto),
        seed=0, device='cpu', log_level='WARNING'))


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    """Non-trivial initial MaPLe prompts saved in the native format."""
    seed_everything(0)
    model = build_model(make_cfg('.', 'x').model.to_dict() | {'prompt_checkpoint': None}, ['a'], 'cpu')
    gen = torch.Generator().manual_seed(5)
    state = {k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in model.prompt_learner.state_dict().items()}
    return str(save_prompt_checkpoint(state, tmp_path_factory.mktemp('ck') / 'maple.safetensors'))


def naive_tokens(cfg, folder):
    """Every image alone through the prompted encoder; returns per-layer tokens, features, labels."""
    ds = ImageFolder(str(folder))
    seed_everything(0)
    model = build_model(cfg.model, ds.classnames, 'cpu')
    pp = model.backbone.preprocess_cfg
    view = TRANSFORMS.build(dict(type='OriginalView'), default_args=dict(
        image_size=pp['size'], mean=pp['mean'], std=pp['std'], interpolation=pp['interpolation']))
    toks = {lay: [] for lay in LAYERS}
    feats, labels = [], []
    with torch.no_grad():
        for d in ds.samples:
            with model.backbone.taps('vision', LAYERS) as taps:
                feats.append(model.image_features(view(load_rgb(d.path))).numpy()[0])
            for lay in LAYERS:
                toks[lay].append(taps[lay].numpy()[0].astype(np.float64))
            labels.append(d.label)
    return {k: np.stack(v) for k, v in toks.items()}, np.stack(feats), np.array(labels), ds


def test_per_class_bank_equals_naive(tmp_path, fake_folder, ckpt):
    cfg = make_cfg(fake_folder, tmp_path / 'p.safetensors', ckpt)
    path = proto_api.compute_prototypes(cfg)
    bank = PrototypeBank.load(path)
    toks, feats, labels, ds = naive_tokens(cfg, fake_folder)
    assert bank.num_classes == ds.num_classes and bank.counts.tolist() == np.bincount(labels).tolist()
    for lay in LAYERS:
        for c in range(ds.num_classes):
            sel = toks[lay][labels == c]
            assert np.allclose(bank.mean[lay][c].numpy(), sel.mean(0), atol=1e-5)
            assert np.allclose(bank.var[lay][c].numpy(), sel.var(0), atol=1e-5)
    fn = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    for c in range(ds.num_classes):
        m = fn[labels == c].mean(0)
        assert np.allclose(bank.visual[c].numpy(), m / np.linalg.norm(m), atol=1e-5)
    assert bank.mean[0].shape == (ds.num_classes, 17 + 2, 64)  # CLS + 16 patches + 2 MaPLe tokens
    meta = bank.metadata
    assert meta['backbone'] == TINY and json.loads(meta['layers']) == list(LAYERS)
    assert meta['prompt_checkpoint_sha256'] and meta['prompt_checkpoint'] == ckpt
    assert meta['dataset'] == 'ImageFolder' and meta['images'] == '12'
    assert bank.label_space.ids == tuple(ds.class_ids)


def test_class_agnostic_and_pooled_banks(tmp_path, fake_folder, ckpt):
    cfg = make_cfg(fake_folder, tmp_path / 'g.safetensors', ckpt, per_class=False)
    bank = PrototypeBank.load(proto_api.compute_prototypes(cfg))
    toks, _, _, _ = naive_tokens(cfg, fake_folder)
    assert bank.num_classes == 1 and bank.counts.tolist() == [12]
    for lay in LAYERS:  # PromptAlign's source statistics: dataset-level per-token mean and variance
        assert np.allclose(bank.mean[lay][0].numpy(), toks[lay].mean(0), atol=1e-5)
        assert np.allclose(bank.var[lay][0].numpy(), toks[lay].var(0), atol=1e-5)
    per_class = PrototypeBank.load(proto_api.compute_prototypes(make_cfg(fake_folder, tmp_path / 'c.safetensors', ckpt)))
    mean, var = per_class.global_stats(LAYERS)  # a per-class bank pools into the class-agnostic one
    for lay in LAYERS:
        assert torch.allclose(mean[lay], bank.mean[lay][0], atol=1e-5)
        assert torch.allclose(var[lay], bank.var[lay][0], atol=1e-5)
    pooled = PrototypeBank.load(proto_api.compute_prototypes(
        make_cfg(fake_folder, tmp_path / 'pooled.safetensors', ckpt, token_stats='pooled')))
    _, _, labels, _ = naive_tokens(cfg, fake_folder)
    sel = toks[0][labels == 1].reshape(-1, 64)
    assert pooled.mean[0].shape == (4, 64)
    assert np.allclose(pooled.mean[0][1].numpy(), sel.mean(0), atol=1e-5)
    assert np.allclose(pooled.var[0][1].numpy(), sel.var(0), atol=1e-5)


def test_interrupted_run_resumes_to_the_same_bank(tmp_path, fake_folder, ckpt, monkeypatch):
    full = PrototypeBank.load(proto_api.compute_prototypes(make_cfg(fake_folder, tmp_path / 'full.safetensors', ckpt)))
    cfg = make_cfg(fake_folder, tmp_path / 'r.safetensors', ckpt, save_every=1)
    restore = interrupt(monkeypatch, BankAccumulator, 'update', lambda n, *a: n == 3)
    with pytest.raises(KeyboardInterrupt):
        proto_api.compute_prototypes(cfg)
    partial = tmp_path / 'r.safetensors.partial.safetensors'
    assert partial.exists() and not (tmp_path / 'r.safetensors').exists()
    restore()
    resumed = PrototypeBank.load(proto_api.compute_prototypes(cfg))
    assert not partial.exists()
    for lay in LAYERS:
        assert torch.allclose(resumed.mean[lay], full.mean[lay], atol=1e-6)
        assert torch.allclose(resumed.var[lay], full.var[lay], atol=1e-6)
    assert torch.equal(resumed.counts, full.counts)
    # a partial left by one configuration is not silently mixed into another
    restore = interrupt(monkeypatch, BankAccumulator, 'update', lambda n, *a: n == 3)
    with pytest.raises(KeyboardInterrupt):
        proto_api.compute_prototypes(cfg)
    restore()
    other = make_cfg(fake_folder, tmp_path / 'r.safetensors', ckpt, save_every=1, layers=(0,))
    with pytest.raises(RuntimeError, match='another configuration'):
        proto_api.compute_prototypes(other)
    assert PrototypeBank.load(proto_api.compute_prototypes(other, resume=False)).layers == (0,)


def test_cli_and_config_errors(tmp_path, fake_folder):
    tool = load_tool('compute_prototypes')
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(make_cfg(fake_folder, tmp_path / 'cli.safetensors').pretty_text)
    out = tool.main([str(cfg_file), '--cfg-options', 'prototypes.layers=[1]'])
    assert PrototypeBank.load(out).layers == (1,)
    with pytest.raises(KeyError, match='proxy_data'):
        proto_api.compute_prototypes(Config(dict(model={}, prototypes=dict(file='x'))))
    with pytest.raises(ValueError, match='token_stats'):
        proto_api.compute_prototypes(make_cfg(fake_folder, tmp_path / 'e.safetensors', token_stats='median'))
    with pytest.raises(FileNotFoundError, match='compute_prototypes'):
        PrototypeBank.load(tmp_path / 'missing.safetensors')
