"""CoCoOp: the meta-net's token shift by hand, per-image text features and logits against a naive per-image loop,
the training step (ctx and meta-net only, the SGD step by hand), evaluation, checkpoints, and the refusals of
methods that cannot use an image-conditioned learner."""
import pytest
import torch
import torch.nn.functional as F

from promptsync.datasets import ImageFolder, ViewDataset
from promptsync.datasets.view_dataset import collate_views
from promptsync.errors import ConfigError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoCoOp
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint, save_prompt_checkpoint
from promptsync.registry import PROMPT_LEARNERS, TTA_METHODS
from promptsync.training import PromptTrainer

from ..conftest import CLASSES
from .cocoop_naive import naive_class_features, naive_context, naive_logits

RELEASE_KEYS = {'ctx', 'meta_net.linear1.weight', 'meta_net.linear1.bias', 'meta_net.linear2.weight',
                'meta_net.linear2.bias'}


pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


def cocoop(backbone, seed=0, **kw):
    torch.manual_seed(seed)
    learner = CoCoOp(backbone, classnames=CLASSES, **kw)
    with torch.no_grad():  # a non-trivial shift: the default init's biases are small
        for p in learner.meta_net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return learner


def test_release_keys_shapes_and_init(backbone):
    learner = cocoop(backbone)
    state = learner.state_dict()
    assert set(state) == RELEASE_KEYS  # CoCoOp's prompt_learner keys (its token_prefix/suffix are rebuilt)
    e, d = backbone.embed_dim, backbone.text_width
    assert state['meta_net.linear1.weight'].shape == (e // 16, e)
    assert state['meta_net.linear2.weight'].shape == (d, e // 16)
    ids = backbone.tokenize(['a photo of a'])
    assert torch.equal(learner.ctx.data, backbone.embed_tokens(ids)[0, 1:5])
    assert learner.conditions_on_image and not learner.has_vision_prompts
    assert PROMPT_LEARNERS.get('CoCoOp') is CoCoOp
    with pytest.raises(ConfigError, match='meta_net_reduction'):
        CoCoOp(backbone, meta_net_reduction=0)


def test_meta_net_shift_by_hand(backbone):
    learner = cocoop(backbone)
    feats = F.normalize(torch.randn(16, backbone.embed_dim), dim=-1)
    got = learner.context(feats)
    assert got.shape == (16, 4, backbone.text_width)
    for b in range(16):
        assert torch.allclose(got[b], naive_context(learner, feats[b]), atol=1e-6)
    assert not torch.allclose(got[0], got[1], atol=1e-3)  # the shift depends on the image
    hidden = feats @ learner.meta_net.linear1.weight.t() + learner.meta_net.linear1.bias
    assert bool((hidden < 0).any()) and bool((hidden > 0).any())  # the ReLU cuts some units: the test sees it


def test_prompts_are_image_major_with_each_images_context(backbone):
    learner = cocoop(backbone)
    feats = F.normalize(torch.randn(2, backbone.embed_dim), dim=-1)
    text = learner(image_features=feats).text
    n_cls = len(CLASSES)
    assert text.embeddings.shape[0] == 2 * n_cls
    for b in range(2):
        ctx_b = naive_context(learner, feats[b])
        for c in range(n_cls):
            assert torch.allclose(text.embeddings[b * n_cls + c, 1:5], ctx_b, atol=1e-6)
            assert torch.equal(text.token_ids[b * n_cls + c], learner.token_ids[c])


@pytest.mark.parametrize('chunk', [None, 3, 9])
def test_per_image_text_features_and_logits_equal_a_naive_loop(backbone, chunk):
    """[B, C, E] text features and [B, C] logits vs one image and one class at a time; text_chunk_size 3 < C
    (one image per group, sequences in chunks) and 9 (two images per group) give the same numbers."""
    model = PromptedCLIP(backbone, cocoop(backbone), text_chunk_size=chunk)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        feats = model.image_features(images)
        text = model.conditioned_text_features(feats)
        logits = model(images)
        expected_logits = naive_logits(model, images)
        for b in range(3):
            ctx_b = naive_context(model.prompt_learner, feats[b])
            assert torch.allclose(text[b], naive_class_features(backbone, CLASSES, ctx_b), atol=1e-5)
    assert text.shape == (3, len(CLASSES), backbone.embed_dim)
    assert torch.allclose(logits, expected_logits, atol=1e-4)
    assert not torch.allclose(text[0], text[1], atol=1e-4)


def test_prompts_without_an_image_are_refused(backbone):
    model = PromptedCLIP(backbone, cocoop(backbone))
    for call in (model.prompt_learner, model.text_features, lambda: model.prompt_learner.prompts_for(['x', 'y'])):
        with pytest.raises(ConfigError, match='without image features') as err:
            call()
        assert 'ZeroShot' in err.value.fix and 'tpt_cocoop' in err.value.fix


def _frozen(backbone):
    assert not any(p.requires_grad for p in backbone.parameters())


def test_training_step_moves_ctx_and_meta_net_only_as_sgd_by_hand(backbone):
    _frozen(backbone)
    model = PromptedCLIP(backbone, cocoop(backbone))
    learner = model.prompt_learner
    trainer = PromptTrainer(model, epochs=2, optimizer=dict(type='SGD', lr=0.5), warmup_epochs=0, batch_size=2,
                            log_interval=0)
    lr = trainer.optimizer.param_groups[0]['lr']
    torch.manual_seed(1)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    backbone_before = [p.detach().clone() for p in backbone.parameters()]
    names = [n for n, _ in learner.named_parameters()]
    with torch.enable_grad():  # the naive loss: CoCoOp's CustomCLIP.forward per image, cross-entropy mean
        loss = F.cross_entropy(naive_logits(model, images), labels)
        grads = torch.autograd.grad(loss, list(learner.parameters()))
    got_loss, _ = trainer.train_step(images, labels)
    assert got_loss == pytest.approx(float(loss), rel=1e-5)
    after = learner.state_dict()
    for name, g in zip(names, grads):
        assert g.abs().sum() > 0, name  # ctx and every meta-net tensor get a gradient
        assert torch.allclose(after[name], before[name] - lr * g, atol=1e-6), name
    assert all(torch.equal(a, b) for a, b in zip(backbone_before, backbone.parameters()))


def test_evaluation_equals_a_naive_loop(backbone, fake_folder):
    model = PromptedCLIP(backbone, cocoop(backbone, seed=3))
    dataset = ImageFolder(str(fake_folder))
    model.set_classnames(list(dataset.classnames))
    trainer = PromptTrainer(model, epochs=1, warmup_epochs=0, val_batch_size=5, log_interval=0)
    indices = list(range(len(dataset)))
    batch = collate_views([ViewDataset(dataset, trainer.val_view, 0, indices)[i] for i in range(len(indices))])
    with torch.no_grad():
        naive = naive_logits(model, batch['views'][:, 0])
    expected = 100.0 * float((naive.argmax(1) == batch['label']).float().mean())
    seen, forward = [], model.forward

    def recorded(images):  # what evaluate() computes, batch by batch
        seen.append(forward(images))
        return seen[-1]
    model.forward = recorded
    assert trainer.evaluate(dataset, indices) == pytest.approx(expected)
    del model.forward
    assert len(seen) == -(-len(indices) // 5) and torch.allclose(torch.cat(seen), naive, atol=1e-4)
    zero = TTA_METHODS.build(dict(type='ZeroShot'), default_args=dict(model=model))  # the steps=0 evaluation
    out = zero.process_batch(dict(views=batch['views'][:7], label=batch['label'][:7], index=batch['index'][:7]))
    assert torch.allclose(torch.stack([r.logits for r in out]), naive[:7], atol=1e-4)


def test_checkpoint_round_trip(backbone, tmp_path):
    learner = cocoop(backbone, seed=4)
    path = save_prompt_checkpoint(learner.state_dict(), tmp_path / 'cocoop.safetensors', dict(type='CoCoOp'))
    other = cocoop(backbone, seed=5)
    load_prompt_checkpoint(other, path)
    assert all(torch.equal(learner.state_dict()[k], other.state_dict()[k]) for k in RELEASE_KEYS)


@pytest.mark.parametrize('method', [dict(type='EpisodicTTA', losses=[dict(type='MarginalEntropyLoss')]),
                                    dict(type='TDA'), dict(type='MTA'), dict(type='Zero'), dict(type='DPE')])
def test_methods_that_need_class_features_without_an_image_refuse(backbone, method):
    model = PromptedCLIP(backbone, cocoop(backbone))
    with pytest.raises(ConfigError) as err:
        TTA_METHODS.build(dict(method), default_args=dict(model=model))
    assert 'ConditionedEpisodicTTA' in (err.value.fix or '')
