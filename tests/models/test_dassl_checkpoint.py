"""CoOp/CoCoOp Dassl checkpoints (prompt_learner/model.pth.tar-N), written the way Dassl writes them, read with
weights_only=True: the pickled optimizer/scheduler objects become inert stand-ins; anything else is refused unrun."""
import os
import sys
import types

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, _LRScheduler

from promptsync.errors import CorruptFileError
from promptsync.models.prompt_learners import CoOp
from promptsync.models.prompt_learners.checkpoint import (
    convert_release_state, load_prompt_checkpoint, read_prompt_checkpoint)
from promptsync.registry import PROMPT_LEARNERS
from promptsync.utils.inert_globals import ALLOWED, InertObject, load_with_inert_standins

from ..conftest import CLASSES


class ConstantWarmupScheduler(_LRScheduler):
    """Dassl's warmup scheduler (dassl/optim/lr_scheduler.py), as far as pickling is concerned: it keeps the real
    scheduler in ``self.successor``, so ``state_dict()`` holds that object (and through it the optimizer)."""

    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.successor, self.warmup_epoch, self.cons_lr = successor, warmup_epoch, cons_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]


@pytest.fixture
def dassl_module(monkeypatch):
    """``dassl.optim.lr_scheduler`` exists while the test saves (pickle records the class by module + name) and is
    gone when it loads: loading must never need (or import) it."""
    mod = types.ModuleType('dassl.optim.lr_scheduler')
    mod.ConstantWarmupScheduler = ConstantWarmupScheduler
    monkeypatch.setattr(ConstantWarmupScheduler, '__module__', 'dassl.optim.lr_scheduler')
    for name, m in (('dassl', types.ModuleType('dassl')), ('dassl.optim', types.ModuleType('dassl.optim')),
                    ('dassl.optim.lr_scheduler', mod)):
        monkeypatch.setitem(sys.modules, name, m)
    yield
    for name in ('dassl.optim.lr_scheduler', 'dassl.optim', 'dassl'):
        sys.modules.pop(name, None)


def dassl_save(path, state: dict, epoch=2, steps=2, lr=0.002):
    """Dassl's save_model + save_checkpoint for one registered model: real SGD + CosineAnnealingLR under the
    constant warmup, a few steps taken, ``{'state_dict', 'epoch', 'optimizer', 'scheduler', 'val_result'}``."""
    params = [torch.nn.Parameter(v.clone()) for v in state.values() if v.is_floating_point()]
    optim = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = ConstantWarmupScheduler(optim, CosineAnnealingLR(optim, T_max=10), warmup_epoch=1, cons_lr=1e-5)
    for _ in range(steps):
        sum(p.square().sum() for p in params).backward()
        optim.step()
        sched.step()
    torch.save({'state_dict': state, 'epoch': epoch, 'optimizer': optim.state_dict(),
                'scheduler': sched.state_dict(), 'val_result': None}, path)


def coop_state(backbone, n_ctx=4, n_cls=4, class_specific=False, classnames=None, half=True):
    g = torch.Generator().manual_seed(1)
    dt = torch.float16 if half else torch.float32
    width = backbone.text_width
    ctx = torch.randn(*((n_cls,) if class_specific else ()), n_ctx, width, generator=g)
    if classnames:  # CoOp's PromptLearner: embed 'X X X X <name>.' and keep what follows SOS + the n_ctx X's
        with torch.no_grad():
            ids = backbone.tokenizer([' '.join(['X'] * n_ctx) + ' ' + n.replace('_', ' ') + '.' for n in classnames])
            suffix = backbone.model.token_embedding(ids)[:, 1 + n_ctx:, :]
    else:
        suffix = torch.randn(n_cls, backbone.context_length - 1 - n_ctx, width, generator=g)
    return {'ctx': ctx.to(dt), 'token_prefix': torch.randn(n_cls, 1, width, generator=g).to(dt),
            'token_suffix': suffix.to(dt)}


def test_the_standins_hold_the_state_and_no_dassl_code_runs(tmp_path, backbone, dassl_module):
    sd = coop_state(backbone)
    dassl_save(tmp_path / 'model.pth.tar-2', sd)
    for name in ('dassl.optim.lr_scheduler', 'dassl.optim', 'dassl'):
        del sys.modules[name]
    obj, replaced = load_with_inert_standins(tmp_path / 'model.pth.tar-2')
    assert 'dassl' not in sys.modules  # nothing imported it
    assert replaced == ['torch.optim.lr_scheduler.CosineAnnealingLR', 'torch.optim.sgd.SGD']
    succ = obj['scheduler']['successor']
    assert isinstance(succ, InertObject) and not isinstance(succ, _LRScheduler)
    assert succ.stands_for == 'torch.optim.lr_scheduler.CosineAnnealingLR' and succ.T_max == 10
    assert not hasattr(succ, 'step') and not hasattr(succ, 'get_lr')  # no method of the real class exists
    opt = succ.optimizer
    assert opt.stands_for == 'torch.optim.sgd.SGD' and opt.param_groups[0]['lr'] == pytest.approx(
        obj['optimizer']['param_groups'][0]['lr'])
    assert type(opt.state) is dict and len(opt.state) == 3  # (3 parameters) the defaultdict became a plain dict, items kept
    assert obj['epoch'] == 2 and torch.equal(obj['state_dict']['ctx'], sd['ctx'])
    # the plain weights-only loader refuses the same file: the stand-ins are what makes it readable
    with pytest.raises(Exception, match='Unsupported global'):
        torch.load(tmp_path / 'model.pth.tar-2', weights_only=True)


def test_coop_checkpoint_loads_into_coop(tmp_path, backbone, dassl_module, warnings_logged):
    sd = coop_state(backbone, n_cls=10)
    dassl_save(tmp_path / 'model.pth.tar-50', sd, epoch=50)
    learner = CoOp(backbone, n_ctx=4, ctx_init=None, classnames=CLASSES)
    meta = load_prompt_checkpoint(learner, tmp_path / 'model.pth.tar-50')
    assert torch.equal(learner.ctx.data, sd['ctx'].float())
    assert meta['layout'] == 'coop' and meta['epoch'] == '50'
    assert '"class_token_buffers": 2' in meta['dropped'] and '"trained_classes": 10' in meta['dropped']
    assert 'trained on 10 classes' in meta['label_space_note'] and 'has 4' in meta['label_space_note']
    assert meta['inert_standins'] == '["torch.optim.lr_scheduler.CosineAnnealingLR", "torch.optim.sgd.SGD"]'
    assert not warnings_logged  # a shared context on another label space is normal (cross-dataset)


def test_class_specific_contexts_check_the_classes(tmp_path, backbone, dassl_module, warnings_logged):
    sd = coop_state(backbone, class_specific=True, classnames=CLASSES)
    dassl_save(tmp_path / 'csc.pth.tar-5', sd)
    learner = CoOp(backbone, n_ctx=4, ctx_init=None, class_specific=True, classnames=CLASSES)
    meta = load_prompt_checkpoint(learner, tmp_path / 'csc.pth.tar-5')
    assert torch.equal(learner.ctx.data, sd['ctx'].float()) and learner.ctx.shape == (4, 4, backbone.text_width)
    assert 'same 4 classes in the same order' in meta['label_space_note'] and not warnings_logged
    # the same contexts for the classes in another order: every context would land on the wrong class
    swapped = CoOp(backbone, n_ctx=4, ctx_init=None, class_specific=True, classnames=CLASSES[::-1])
    meta = load_prompt_checkpoint(swapped, tmp_path / 'csc.pth.tar-5')
    assert 'differ from this label space' in meta['label_space_note'] and "'tabby_cat'" in meta['label_space_note']
    assert len(warnings_logged) == 1 and 'class order' in warnings_logged[0].getMessage()
    # another class count: refused by shape, with the reason
    sd10 = coop_state(backbone, n_cls=10, class_specific=True)
    dassl_save(tmp_path / 'csc10.pth.tar-5', sd10)
    with pytest.raises(ValueError, match='for 10 classes, this label space has 4'):
        load_prompt_checkpoint(learner, tmp_path / 'csc10.pth.tar-5')


def cocoop_state(vis_dim=32, width=32, n_ctx=4, n_cls=7):
    g = torch.Generator().manual_seed(2)
    h = torch.float16
    return {'ctx': torch.randn(n_ctx, width, generator=g).to(h),
            'meta_net.linear1.weight': torch.randn(vis_dim // 16, vis_dim, generator=g).to(h),
            'meta_net.linear1.bias': torch.randn(vis_dim // 16, generator=g).to(h),
            'meta_net.linear2.weight': torch.randn(width, vis_dim // 16, generator=g).to(h),
            'meta_net.linear2.bias': torch.randn(width, generator=g).to(h),
            'token_prefix': torch.randn(n_cls, 1, width, generator=g).to(h),
            'token_suffix': torch.randn(n_cls, 11, width, generator=g).to(h)}


def test_cocoop_keys_map_one_to_one(tmp_path, dassl_module):
    sd = cocoop_state()
    dassl_save(tmp_path / 'model.pth.tar-10', sd)
    state, meta = read_prompt_checkpoint(tmp_path / 'model.pth.tar-10')
    assert meta['layout'] == 'cocoop' and '"trained_classes": 7' in meta['dropped']
    assert set(state) == {'ctx', 'meta_net.linear1.weight', 'meta_net.linear1.bias', 'meta_net.linear2.weight',
                          'meta_net.linear2.bias'}
    for key, value in state.items():
        assert value.dtype == torch.float32 and torch.equal(value, sd[key].float())


@pytest.mark.skipif('CoCoOp' not in PROMPT_LEARNERS.module_dict, reason='the CoCoOp learner (H2) is not registered')
def test_cocoop_checkpoint_loads_into_cocoop(tmp_path, backbone, dassl_module):
    learner = PROMPT_LEARNERS.build(dict(type='CoCoOp', n_ctx=4, ctx_init=None), default_args=dict(
        backbone=backbone, classnames=CLASSES))
    shapes = {k: tuple(v.shape) for k, v in learner.state_dict().items()}
    g = torch.Generator().manual_seed(3)
    sd = {k: torch.randn(s, generator=g).half() for k, s in shapes.items()}
    sd.update(token_prefix=torch.zeros(4, 1, backbone.text_width).half(),
              token_suffix=torch.zeros(4, 11, backbone.text_width).half())
    dassl_save(tmp_path / 'model.pth.tar-10', sd)
    meta = load_prompt_checkpoint(learner, tmp_path / 'model.pth.tar-10')
    for key, value in learner.state_dict().items():
        assert torch.equal(value, sd[key].float()), key
    assert meta['layout'] == 'cocoop'


class Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class EvilEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.mark.parametrize('kind', ['os.system', 'builtins.eval', 'user class'])
def test_other_globals_are_refused_unrun(tmp_path, backbone, kind):
    marker = tmp_path / 'it_ran'
    payload = {'os.system': Evil(f'touch {marker}'), 'builtins.eval': EvilEval(marker),
               'user class': types.SimpleNamespace(a=1)}[kind]
    torch.save({'state_dict': {'ctx': torch.zeros(4, 32)}, 'epoch': 1, 'optimizer': None,
                'scheduler': {'successor': payload}}, tmp_path / 'model.pth.tar-1')
    with pytest.raises(CorruptFileError) as info:
        load_prompt_checkpoint(CoOp(backbone, n_ctx=4, ctx_init=None, classnames=CLASSES), tmp_path / 'model.pth.tar-1')
    msg = str(info.value)
    name = {'os.system': f'{os.system.__module__}.system', 'builtins.eval': 'builtins.eval',
            'user class': 'types.SimpleNamespace'}[kind]
    assert name in msg and 'never unpickles' in msg and 'run their code' in msg
    assert "weights_only=False); torch.save({'state_dict'" in msg  # the one-line re-save command
    assert not marker.exists()  # nothing was executed
    assert name not in ALLOWED


def test_maple_layout_still_reads(tmp_path):
    state = {'prompt_learner.ctx': torch.ones(2, 8), 'prompt_learner.token_suffix': torch.zeros(3, 5, 8),
             'image_encoder.conv1.weight': torch.zeros(1)}
    kept, dropped = convert_release_state(state)
    assert set(kept) == {'ctx'} and dropped == {'frozen_clip_weights': 1, 'class_token_buffers': 1,
                                                'trained_classes': 3}
    with pytest.raises(ValueError, match='not a MaPLe/PromptAlign/CoOp/CoCoOp'):
        convert_release_state({'visual.proj': torch.zeros(1)})
