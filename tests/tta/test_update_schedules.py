"""Synchronised prompts: which branch moves under each update schedule; PromptSync's gradients reach both
branches' prompts and nothing else."""
import pytest
import torch
from mmengine.config import Config

from promptsync.engine import compute_prototypes
from promptsync.datasets import ImageFolder
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe
from promptsync.hooks import HookList, TTAHook
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES, TINY

PROMPTSYNC_LOSSES = [dict(type='MarginalEntropyLoss', weight=1.0),
                     dict(type='ClassAwarePrototypeAlignmentLoss', weight=100 / 3, layers=(0, 1)),
                     dict(type='PrototypeDiscriminationLoss', weight=1.0)]


@pytest.fixture(scope='module')
def bank_file(tmp_path_factory, fake_folder):
    out = tmp_path_factory.mktemp('bank') / 'proto.safetensors'
    cfg = Config(dict(model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                                 prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
                      proxy_data=dict(dataset=dict(type='ImageFolder', root=str(fake_folder)), batch_size=6),
                      prototypes=dict(file=str(out), layers=(0, 1)), seed=0, device='cpu', log_level='WARNING'))
    return str(compute_prototypes(cfg))


class StepLog(TTAHook):
    def __init__(self):
        self.phases, self.grads = [], []

    def after_step(self, runner, ctx):
        self.phases.append(ctx.extra['phase'])
        learner = ctx.model.prompt_learner
        self.grads.append({n: p.grad is not None and float(p.grad.abs().sum()) > 0
                           for n, p in learner.named_parameters()})
        self.after = learner.snapshot()


def run(backbone, bank_file, fake_folder, update='joint', steps=1, losses=PROMPTSYNC_LOSSES):
    maple = MaPLe(backbone, n_ctx=2, depth=3, classnames=CLASSES)
    log = StepLog()
    model = PromptedCLIP(backbone, maple)
    model.set_label_space(ImageFolder(str(fake_folder)).label_space)
    tta = EpisodicTTA(model, losses=losses, steps=steps, update=update,
                      selection=dict(type='ConfidenceSelection', ratio=0.25), optimizer=dict(type='AdamW', lr=0.04),
                      resources=dict(prototypes=bank_file), hooks=HookList([log]))
    init = maple.snapshot()
    g = torch.Generator().manual_seed(0)
    tta.process_sample(torch.randn(8, 3, 32, 32, generator=g), 0, 0)
    changed = {k for k in init if not torch.equal(init[k], log.after[k])}
    return tta, log, changed


TEXT = {'ctx', 'compound_prompts_text.0', 'compound_prompts_text.1'}


def test_promptsync_gradients_reach_both_branches_and_only_prompts(backbone, bank_file, fake_folder):
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    tta, log, changed = run(backbone, bank_file, fake_folder)
    assert all(log.grads[0].values()), log.grads[0]          # every prompt tensor of both branches gets gradient
    assert changed == set(tta.learner.state_dict())
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    summary = tta.summary()['losses']
    assert summary['ClassAwarePrototypeAlignmentLoss']['mode'] == 'by_id'
    assert summary['ClassAwarePrototypeAlignmentLoss']['matched'] == len(CLASSES)


def test_which_prompts_each_term_reaches(backbone, bank_file, fake_folder):
    """Alignment acts on vision tokens: it reaches the couplings and (through them) the text context.
    prototype_to_text acts on text features only; sample_to_prototype on image features only."""
    _, log, _ = run(backbone, bank_file, fake_folder, losses=[PROMPTSYNC_LOSSES[1]])
    assert log.grads[0]['proj.weight'] and log.grads[0]['ctx']
    _, log, _ = run(backbone, bank_file, fake_folder, losses=[PROMPTSYNC_LOSSES[2]])
    assert log.grads[0]['ctx'] and not log.grads[0]['proj.weight']
    _, log, _ = run(backbone, bank_file, fake_folder,
                    losses=[dict(type='PrototypeDiscriminationLoss', mode='sample_to_prototype')])
    assert log.grads[0]['proj.weight'] and log.grads[0]['compound_prompt_projections.1.weight']


@pytest.mark.parametrize('update,expected', [('text', TEXT), ('vision', None)])
def test_single_branch_updates(backbone, bank_file, fake_folder, update, expected):
    tta, log, changed = run(backbone, bank_file, fake_folder, update=update)
    vision = set(tta.learner.state_dict()) - TEXT
    assert changed == (expected if expected is not None else vision)
    assert log.phases == [update]


def test_alternating_updates_text_then_vision_each_step(backbone, bank_file, fake_folder):
    tta, log, changed = run(backbone, bank_file, fake_folder, update='alternating', steps=2)
    assert log.phases == ['text', 'vision', 'text', 'vision']
    assert changed == set(tta.learner.state_dict())


def test_schedule_needs_the_branch(backbone):
    coop = CoOp(backbone, classnames=CLASSES)
    with pytest.raises(ValueError, match="needs a 'vision' branch"):
        EpisodicTTA(PromptedCLIP(backbone, coop), losses=[dict(type='MarginalEntropyLoss')], update='vision')
    with pytest.raises(ValueError, match='not one of'):
        EpisodicTTA(PromptedCLIP(backbone, coop), losses=[dict(type='MarginalEntropyLoss')], update='both')
