"""PromptTrainer / tools/train.py: SGD by hand, frozen backbone, learning on a toy set, few-shot sampling,
checkpoint round trip, resume, and the warm-up + cosine schedule."""
import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from promptsync import engine as train_api
from promptsync.datasets import ClassificationDataset, ImageFolder, ViewDataset
from promptsync.datasets.fake import make_image_folder
from promptsync.datasets.fewshot import sample_few_shot
from promptsync.training import PromptTrainer, WarmupCosineLR
from promptsync.models import build_model
from promptsync.registry import TRANSFORMS
from promptsync.utils.seeding import SampleRNG, seed_everything

from ..conftest import TINY, interrupt
from ..tools.helpers import load_tool

COLOURS = {'blue': (30, 40, 220), 'green': (30, 200, 40), 'red': (220, 30, 30)}


pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


@pytest.fixture(scope='module')
def colours(tmp_path_factory):
    """A separable toy set: 6 noisy images per class, the colour is the class."""
    root = tmp_path_factory.mktemp('colours')
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / name).mkdir()
        for k in range(6):
            noisy = np.array(rgb)[None, None] + rng.normal(0, 25, (36, 40, 3))
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(root / name / f'{k}.png')
    return root


def make_cfg(root, work_dir, epochs=4, optimizer=None, **trainer):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
        train_data=dict(dataset=dict(type='ImageFolder', root=str(root)), num_shots=4, batch_size=4, num_workers=0),
        val_data=dict(dataset=dict(type='ImageFolder', root=str(root)), max_samples=None),
        trainer=dict(type='PromptTrainer', epochs=epochs, optimizer=optimizer or dict(type='AdamW', lr=0.05),
                     warmup_epochs=1, warmup_lr=1e-5, log_interval=0, **trainer),
        seed=0, device='cpu', work_dir=str(work_dir), log_level='WARNING'))


def fresh_model(cfg, classnames):
    seed_everything(int(cfg.seed))
    return build_model(cfg.model, classnames, 'cpu')


def test_schedule_is_constant_warmup_then_dassl_cosine():
    def run(epochs, warmup, lr, warmup_lr=1e-5, min_lr=0.0, steps=None):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        sched = WarmupCosineLR(opt, epochs, warmup, warmup_lr, min_lr)
        out = []
        for _ in range(epochs if steps is None else steps):
            out.append(opt.param_groups[0]['lr'])
            opt.step()
            sched.step()
        return out, sched
    got, _ = run(5, 1, 0.0035)  # MaPLe: the cosine (T_max = 5 epochs) starts after the warm-up epoch
    assert got == pytest.approx([1e-5, 0.0035, 0.0031657797, 0.0022907797, 0.0012092203], rel=1e-7)
    assert run(2, 1, 0.0026)[0] == pytest.approx([1e-5, 0.0026])  # MaPLe's cross-dataset ImageNet recipe
    assert run(4, 0, 1.0, min_lr=0.2)[0] == pytest.approx([1.0, 0.2 + 0.8 * (1 + math.sqrt(0.5)) / 2, 0.6,
                                                           0.2 + 0.8 * (1 - math.sqrt(0.5)) / 2])
    _, part = run(5, 1, 0.0035, steps=3)  # the state dict is plain JSON and restores the position exactly
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0035)
    again = WarmupCosineLR(opt, 5, 1, 1e-5)
    again.load_state_dict(json.loads(json.dumps(part.state_dict())))
    again.step()
    assert opt.param_groups[0]['lr'] == pytest.approx(got[4], rel=1e-12)
    with pytest.raises(ValueError, match='warmup_epochs'):
        WarmupCosineLR(opt, 2, 2)


def test_two_steps_equal_hand_sgd_with_momentum_and_weight_decay(colours):
    cfg = make_cfg(colours, '.')
    model = fresh_model(cfg, list(COLOURS))
    lr, mom, wd = 0.05, 0.9, 5e-4
    trainer = PromptTrainer(model, epochs=3, warmup_epochs=0,
                            optimizer=dict(type='SGD', lr=lr, momentum=mom, weight_decay=wd))
    names = [n for n, _ in model.prompt_learner.named_parameters()]
    params = list(model.prompt_learner.parameters())
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    images, labels = torch.randn(4, 3, 32, 32, generator=gen), torch.tensor([0, 1, 2, 1])

    def grads():  # the cross-entropy gradient at the current prompts, by autograd on the model itself
        prompts = model.prompts()
        logits = model.logits(model.image_features(images, prompts), model.text_features(prompts))
        return [g.detach() for g in torch.autograd.grad(F.cross_entropy(logits, labels), params)]
    p0 = [p.detach().clone() for p in params]
    g0 = grads()
    trainer.train_step(images, labels)
    buf = [g + wd * p for g, p in zip(g0, p0)]                 # first step: buffer = d_p
    p1 = [p - lr * b for p, b in zip(p0, buf)]
    for name, got, want in zip(names, params, p1):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), name
    g1 = grads()
    trainer.train_step(images, labels)
    buf = [mom * b + g + wd * p for b, g, p in zip(buf, g1, p1)]
    p2 = [p - lr * b for p, b in zip(p1, buf)]
    for name, got, want, start in zip(names, params, p2, p0):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), name
        assert not torch.equal(got, start), f'{name} did not move'
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, backbone_before[k]), f'backbone {k} changed'


def test_backbone_must_be_frozen_and_learner_trainable(colours):
    cfg = make_cfg(colours, '.')
    model = fresh_model(cfg, list(COLOURS))
    model.backbone.model.logit_scale.requires_grad_(True)
    with pytest.raises(RuntimeError, match='frozen.*logit_scale'):
        PromptTrainer(model)
    cfg.model.prompt_learner = dict(type='TemplatePrompts', templates='single')
    with pytest.raises(ValueError, match='no learnable parameters'):
        PromptTrainer(fresh_model(cfg, list(COLOURS)))


def test_fewshot_sampling_is_seeded_balanced_and_order_independent(tmp_path):
    root = make_image_folder(tmp_path / 'a', ['x', 'y', 'z'], per_class=[5, 7, 3])
    ds = ImageFolder(str(root))
    sub = sample_few_shot(ds, 3, seed=0)
    assert np.bincount([ds[i].label for i in sub.indices]).tolist() == [3, 3, 3]
    assert sample_few_shot(ds, 3, seed=0).indices == sub.indices
    assert len({tuple(sample_few_shot(ds, 3, seed=s).indices) for s in range(4)}) > 1
    assert set(sample_few_shot(ds, 2, seed=0).indices) <= set(sub.indices)  # nested over K
    paths = {ds[i].path for i in sub.indices}
    shuffled = ClassificationDataset([ds.samples[i] for i in np.random.default_rng(3).permutation(len(ds))],
                                     ds.classnames)
    shuffled.root = ds.root
    assert {shuffled[i].path for i in sample_few_shot(shuffled, 3, seed=0).indices} == paths
    moved = ImageFolder(str(shutil.copytree(root, tmp_path / 'moved')))  # relative paths, not the mount point
    assert [moved[i].path.replace(str(moved.root), '') for i in sample_few_shot(moved, 3, 0).indices] == \
        [ds[i].path.replace(str(ds.root), '') for i in sub.indices]
    with pytest.raises(ValueError, match=r"1 of 3 classes have fewer than num_shots=4.*'z' \(3\).*short_classes"):
        sample_few_shot(ds, 4, seed=0)
    short = sample_few_shot(ds, 4, seed=0, short_classes='use_all')
    assert short.short_classes == {'z': 3} and len(short.indices) == 11


def test_config_errors_are_actionable(colours, tmp_path):
    with pytest.raises(KeyError, match=r"train_data=dict\(dataset=.*missing: \['train_data'\]"):
        train_api.fit_prompts(Config(dict(model=dict(x=1), trainer=dict(type='PromptTrainer'), work_dir=str(tmp_path))))
    cfg = make_cfg(colours, tmp_path / 'bs', batch_size=8)
    with pytest.raises(ValueError, match='train_data.batch_size=4 and trainer.batch_size=8 disagree'):
        train_api.fit_prompts(cfg)
    cfg = make_cfg(colours, tmp_path / 'val')
    cfg.val_data.dataset.root = str(make_image_folder(tmp_path / 'other', ['x', 'y', 'z'], per_class=1))
    with pytest.raises(ValueError, match='same label space'):
        train_api.fit_prompts(cfg)


def test_train_view_and_epoch_order_are_seeded(colours):
    view = TRANSFORMS.build(dict(type='TrainView'), default_args=dict(image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3))
    img = Image.open(next(colours.glob('red/*.png'))).convert('RGB')
    a, b = view(img, SampleRNG.for_sample(7, 1)), view(img, SampleRNG.for_sample(7, 1))
    assert a.shape == (1, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, view(img, SampleRNG.for_sample(8, 1)))
    trainer = PromptTrainer(fresh_model(make_cfg(colours, '.'), list(COLOURS)), seed=3)
    order = trainer.epoch_order(list(range(10, 22)), 0)
    assert sorted(order) == list(range(10, 22)) and order == trainer.epoch_order(list(range(10, 22)), 0)
    assert order != trainer.epoch_order(list(range(10, 22)), 1)
    ds = ViewDataset(ImageFolder(str(colours)), view, 0, [0])
    assert ds[0]['views'].shape == (1, 3, 32, 32)
    seen = []  # the crops of epoch e depend on (seed, e, index): new each epoch, identical when e is repeated
    trainer.train_step = lambda images, labels: seen.append(images.clone()) or (0.0, 0)
    crops = []
    for epoch in (0, 1, 0):
        seen.clear()
        trainer.train_epoch(ds.dataset, list(range(12)), epoch)
        by_index = dict(zip(trainer.epoch_order(list(range(12)), epoch), torch.cat(seen)))
        crops.append(torch.stack([by_index[i] for i in range(12)]))
    assert torch.equal(crops[0], crops[2]) and not torch.equal(crops[0], crops[1])


def test_toy_training_learns_and_the_checkpoint_reproduces_it(colours, tmp_path):
    cfg = make_cfg(colours, tmp_path / 'run', epochs=6, final_model='best_val')
    result = train_api.fit_prompts(cfg)
    hist = [json.loads(line) for line in (tmp_path / 'run/train_log.jsonl').read_text().splitlines()]
    assert [h['epoch'] for h in hist] == list(range(1, 7)) and hist == result.summary['history']
    assert hist[-1]['loss'] < 0.8 * hist[0]['loss'] and hist[-1]['train_acc'] > hist[0]['train_acc']
    assert result.summary['best_val_acc'] > hist[0]['val_acc']
    assert [h['lr'] for h in hist] == pytest.approx(
        [1e-5] + [0.05 * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(5)])
    for name in ('config.py', 'log.txt', 'fewshot_indices.json', 'resume_state.safetensors'):
        assert (tmp_path / 'run' / name).exists(), name
    shots = json.loads((tmp_path / 'run/fewshot_indices.json').read_text())
    assert shots['num_shots'] == 4 and np.bincount(shots['labels']).tolist() == [4, 4, 4]
    assert hist[0]['images'] == 12
    # only the prompts moved: the backbone equals a freshly built one, the learner does not
    fresh = fresh_model(cfg, list(COLOURS))
    for k, v in fresh.backbone.state_dict().items():
        assert torch.equal(v, result.model.backbone.state_dict()[k]), k
    assert all(not torch.equal(v, result.model.prompt_learner.state_dict()[k])
               for k, v in fresh.prompt_learner.state_dict().items())
    # the saved prompts are the best-validation epoch's, and load back into a fresh model exactly
    best = {k[5:]: v for k, v in load_file(str(tmp_path / 'run/resume_state.safetensors')).items()
            if k.startswith('best.')}
    saved = load_file(str(result.checkpoint))
    assert saved.keys() == best.keys() and all(torch.equal(saved[k], best[k]) for k in saved)
    with safe_open(str(result.checkpoint), framework='pt') as fh:
        meta = fh.metadata()
    assert meta['prompt_learner'] == 'MaPLe' and meta['backbone'] == TINY and meta['shots'] == '4'
    assert meta['selected_epoch'] == meta['best_epoch'] == str(result.summary['best_epoch'])
    assert float(meta['best_val_acc']) == result.summary['best_val_acc'] and meta['epochs'] == '6'
    assert json.loads(meta['prompt_learner_cfg'])['type'] == 'MaPLe' and meta['seed'] == '0'
    cfg.model.prompt_checkpoint = str(result.checkpoint)
    loaded = fresh_model(cfg, list(COLOURS))
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(images), result.model(images))


def test_resume_after_interruption_equals_an_uninterrupted_run(colours, tmp_path, monkeypatch):
    sgd = dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=5e-4)  # momentum: the optimizer state matters
    full = train_api.train_prompts(make_cfg(colours, tmp_path / 'full', epochs=4, optimizer=sgd))
    cfg = make_cfg(colours, tmp_path / 'cut', epochs=4, optimizer=sgd)
    restore = interrupt(monkeypatch, PromptTrainer, 'train_epoch', lambda n, dataset, indices, epoch: epoch == 2)
    with pytest.raises(KeyboardInterrupt):
        train_api.train_prompts(cfg)
    assert not (tmp_path / 'cut/prompt_learner.safetensors').exists()
    assert len((tmp_path / 'cut/train_log.jsonl').read_text().splitlines()) == 2
    restore()
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(cfg.pretty_text)
    tool = load_tool('train')
    resumed = tool.main([str(cfg_file), '--work-dir', str(tmp_path / 'cut')])
    want, got = load_file(str(full)), load_file(str(resumed))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    logs = [[{k: v for k, v in json.loads(line).items() if k != 'seconds'} for line in
             (tmp_path / d / 'train_log.jsonl').read_text().splitlines()] for d in ('full', 'cut')]
    assert logs[0] == logs[1] and len(logs[0]) == 4
    # a different config in the same work dir is refused; --no-resume starts over
    with pytest.raises(RuntimeError, match='different config.*--no-resume'):
        tool.main([str(cfg_file), '--work-dir', str(tmp_path / 'cut'), '--cfg-options', 'trainer.epochs=2'])
    tool.main([str(cfg_file), '--work-dir', str(tmp_path / 'cut'), '--no-resume', '--cfg-options', 'trainer.epochs=2'])
    assert len((tmp_path / 'cut/train_log.jsonl').read_text().splitlines()) == 2
