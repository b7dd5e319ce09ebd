"""IVLP and VPT: the forward against a hand-written version of MaPLe's release (independentVL.py, vpt.py,
clip/model.py), parameters, branches, independence of the branches, state, release keys, training and TTA."""
import pytest
import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.hooks import Hook, HookList
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import IVLP, VPT, TemplatePrompts
from promptsync.models.prompt_learners import ivlp as ivlp_module
from promptsync.models.prompt_learners import vpt as vpt_module
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint, save_prompt_checkpoint
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES

OTHER = ['horse', 'zebra', 'sea_lion']


def randomise(learner, seed=0):
    """Distinct random values in every learnable tensor (the initial deep prompts are all N(0, 0.02))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return learner


def naive_ivlp_text(backbone, classnames, ctx, deep, ctx_init='a photo of a'):
    """The release's IVLP text side written out: prompt "<ctx_init> <class>." with its first n tokens replaced by
    ``ctx`` (token_prefix + ctx + token_suffix), then per text block i in ``deep``: x = [x[:1], deep[i], x[1+n:]]
    before the block (ResidualAttentionBlock_IVLP), the full 77-style context (no truncation), EOT pooling."""
    m = backbone.model
    n = ctx.shape[0]
    ids = backbone.tokenize([f"{ctx_init} {c.replace('_', ' ')}." for c in classnames])
    emb = m.token_embedding(ids)
    x = torch.cat([emb[:, :1], ctx.expand(len(classnames), -1, -1), emb[:, 1 + n:]], dim=1)
    x = x + m.positional_embedding
    for i, blk in enumerate(m.transformer.resblocks):
        if i in deep:
            x = torch.cat([x[:, :1], deep[i].expand(len(classnames), -1, -1), x[:, 1 + n:]], dim=1)
        x = blk(x, attn_mask=m.attn_mask)
    x = m.ln_final(x)
    return F.normalize(x[torch.arange(len(classnames)), ids.argmax(-1)] @ m.text_projection, dim=-1)


def naive_vpt_image(backbone, images, shallow, deep):
    """The release's VisionTransformer with VPT-deep written out: VPT appended after the positional embedding, the
    last n tokens replaced at the blocks in ``deep``, ln_post of token 0 with the prompt tokens still present."""
    v = backbone.visual
    x = v.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], 1) + v.positional_embedding
    x = torch.cat([x, shallow.expand(x.shape[0], -1, -1)], 1)
    x = v.ln_pre(x)
    n = shallow.shape[0]
    for i, blk in enumerate(v.transformer.resblocks):
        if i in deep:
            x = torch.cat([x[:, :-n], deep[i].expand(x.shape[0], -1, -1)], 1)
        x = blk(x)
    return F.normalize(v.ln_post(x[:, 0]) @ v.proj, dim=-1)


def images(n=3, seed=5):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------- IVLP
def test_ivlp_keys_shapes_count_and_branches(backbone):
    learner = IVLP(backbone, n_ctx_text=2, n_ctx_vision=3, depth_text=3, depth_vision=2, classnames=CLASSES)
    d_t, d_v = backbone.text_width, backbone.vision_width
    shapes = {k: tuple(v.shape) for k, v in learner.state_dict().items()}
    assert shapes == {'ctx': (2, d_t), 'deep_text.1': (2, d_t), 'deep_text.2': (2, d_t),
                      'vision_ctx': (3, d_v), 'deep_vision.1': (3, d_v)}
    assert sum(p.numel() for p in learner.parameters()) == 3 * 2 * d_t + 2 * 3 * d_v
    # the initial context is the embedding of "a photo" (the first 2 tokens of ctx_init), as the release's
    assert torch.equal(learner.ctx.data, backbone.embed_tokens(backbone.tokenize(['a photo of a']))[0, 1:3])
    assert 0.01 < float(learner.deep_vision['1'].std()) < 0.03  # N(0, 0.02)
    assert learner.has_vision_prompts
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(learner.branch_parameters('text')) == ids([learner.ctx, *learner.deep_text.values()])
    assert ids(learner.branch_parameters('vision')) == ids([learner.vision_ctx, *learner.deep_vision.values()])
    p = learner()
    assert set(p.text.deep) == {1, 2} and set(p.vision.deep) == {1}
    assert p.vision.shallow is learner.vision_ctx and p.text.deep[2] is learner.deep_text['2']
    assert p.text.positions.tolist() == [[1, 2]] * len(CLASSES)  # the release replaces positions 1..n at every layer


@torch.no_grad()
def test_ivlp_forward_equals_the_release_by_hand(backbone):
    learner = randomise(IVLP(backbone, n_ctx_text=2, n_ctx_vision=2, depth_text=3, depth_vision=3,
                             classnames=CLASSES))
    model = PromptedCLIP(backbone, learner)
    deep_t = {int(k): v for k, v in learner.deep_text.items()}
    deep_v = {int(k): v for k, v in learner.deep_vision.items()}
    text = naive_ivlp_text(backbone, CLASSES, learner.ctx, deep_t)
    image = naive_vpt_image(backbone, images(), learner.vision_ctx, deep_v)
    assert torch.allclose(model.text_features(), text, atol=1e-5)
    assert torch.allclose(model.image_features(images()), image, atol=1e-5)
    assert torch.allclose(model(images()), backbone.logit_scale() * image @ text.t(), atol=1e-4)
    # the hand computation can fail: without the deep prompts it gives other features
    assert not torch.allclose(naive_ivlp_text(backbone, CLASSES, learner.ctx, {}), text, atol=1e-3)
    assert not torch.allclose(naive_vpt_image(backbone, images(), learner.vision_ctx, {}), image, atol=1e-3)


def test_ivlp_branches_are_independent(backbone):
    learner = randomise(IVLP(backbone, depth_text=3, depth_vision=3, classnames=CLASSES))
    model = PromptedCLIP(backbone, learner)
    x = images()
    with torch.no_grad():
        text0, image0 = model.text_features(), model.image_features(x)
        for p in learner.branch_parameters('text'):
            p.add_(torch.randn_like(p))  # random: LayerNorm cancels a constant shift of a token
        text1, image1 = model.text_features(), model.image_features(x)
        for p in learner.branch_parameters('vision'):
            p.add_(torch.randn_like(p))
        text2, image2 = model.text_features(), model.image_features(x)
    assert torch.equal(image1, image0) and not torch.allclose(text1, text0, atol=1e-3)
    assert torch.equal(text2, text1) and not torch.allclose(image2, image1, atol=1e-3)
    # and no gradient crosses: the image features do not depend on a text tensor, nor the text on a vision tensor
    prompts = learner()
    grads = torch.autograd.grad(model.image_features(x, prompts).sum(), list(learner.parameters()), allow_unused=True)
    named = dict(zip([n for n, _ in learner.named_parameters()], grads))
    assert all(named[n] is None for n in ('ctx', 'deep_text.1', 'deep_text.2'))
    assert all(named[n] is not None and named[n].abs().sum() > 0 for n in ('vision_ctx', 'deep_vision.1'))
    grads = torch.autograd.grad(model.text_features(prompts).sum(), list(learner.parameters()), allow_unused=True)
    named = dict(zip([n for n, _ in learner.named_parameters()], grads))
    assert all(named[n] is None for n in ('vision_ctx', 'deep_vision.1', 'deep_vision.2'))


@torch.no_grad()
def test_ivlp_language_only_variant(backbone):
    """The release's "deep language prompting" (n_ctx_vision=0, depth_vision=0): the image encoder is CLIP's."""
    learner = randomise(IVLP(backbone, n_ctx_text=4, n_ctx_vision=0, depth_text=3, depth_vision=0,
                             classnames=CLASSES))
    assert not learner.has_vision_prompts and set(learner.branches) == {'text'}
    assert set(learner.state_dict()) == {'ctx', 'deep_text.1', 'deep_text.2'} and learner().vision is None
    model = PromptedCLIP(backbone, learner)
    plain = F.normalize(backbone.model.encode_image(images()), dim=-1)
    assert torch.allclose(model.image_features(images()), plain, atol=1e-6)
    deep_t = {int(k): v for k, v in learner.deep_text.items()}
    assert torch.allclose(model.text_features(), naive_ivlp_text(backbone, CLASSES, learner.ctx, deep_t), atol=1e-5)


def test_ivlp_and_vpt_depth_and_token_errors(backbone):
    with pytest.raises(ConfigError, match=r"depth_text=4 must be an integer in 1\.\.3"):
        IVLP(backbone, depth_text=4, depth_vision=3)
    with pytest.raises(ConfigError, match=r"depth_vision=9 must be an integer in 0\.\.3"):
        IVLP(backbone, depth_text=3)  # the defaults (9) do not fit the tiny model: an error, not a silent cap
    with pytest.raises(ConfigError, match='both 0 for no prompts'):
        IVLP(backbone, n_ctx_vision=2, depth_text=3, depth_vision=0)
    with pytest.raises(ConfigError, match='depth_text=0'):
        IVLP(backbone, depth_text=0, depth_vision=1)
    with pytest.raises(ValueError, match='has 4 tokens'):
        IVLP(backbone, n_ctx_text=5, depth_text=3, depth_vision=3)
    with pytest.raises(ConfigError, match=r"depth=4 must be an integer in 1\.\.3"):
        VPT(backbone, depth=4)
    with pytest.raises(ConfigError, match='both 0'):
        VPT(backbone, n_ctx_vision=0, depth=2)


# ---------------------------------------------------------------------------------------------------- VPT
def test_vpt_keys_shapes_and_branches(backbone):
    learner = VPT(backbone, n_ctx_vision=4, depth=3, classnames=CLASSES)
    d_v = backbone.vision_width
    assert {k: tuple(v.shape) for k, v in learner.state_dict().items()} == \
        {'vision_ctx': (4, d_v), 'deep_vision.1': (4, d_v), 'deep_vision.2': (4, d_v)}
    assert sum(p.numel() for p in learner.parameters()) == 3 * 4 * d_v
    assert set(learner.branches) == {'vision'} and learner.has_vision_prompts
    assert len(learner.branch_parameters('vision')) == 3
    assert learner.templates == ['a photo of a {}.']  # trainers/vpt.py's fixed prompt
    shallow = VPT(backbone, n_ctx_vision=4, depth=1, classnames=CLASSES)()
    assert shallow.vision.deep == {} and shallow.vision.shallow.shape == (4, d_v)


@torch.no_grad()
def test_vpt_forward_equals_the_release_by_hand(backbone):
    learner = randomise(VPT(backbone, n_ctx_vision=4, depth=3, classnames=CLASSES))
    model = PromptedCLIP(backbone, learner)
    # text: the release's FixedEmbeddings = CLIP's own text features of "a photo of a {class}."
    ids = backbone.tokenize([f"a photo of a {c.replace('_', ' ')}." for c in CLASSES])
    fixed = F.normalize(backbone.model.encode_text(ids), dim=-1)
    zero_shot = PromptedCLIP(backbone, TemplatePrompts(backbone, 'single', CLASSES)).text_features()
    assert torch.allclose(model.text_features(), fixed, atol=1e-5)
    assert torch.equal(model.text_features(), zero_shot)
    deep_v = {int(k): v for k, v in learner.deep_vision.items()}
    image = naive_vpt_image(backbone, images(), learner.vision_ctx, deep_v)
    assert torch.allclose(model.image_features(images()), image, atol=1e-5)
    assert not torch.allclose(naive_vpt_image(backbone, images(), learner.vision_ctx, {2: deep_v[2]}), image,
                              atol=1e-3)
    assert torch.allclose(model(images()), backbone.logit_scale() * image @ fixed.t(), atol=1e-4)


# ---------------------------------------------------------------------------------------------------- both
def make(kind, backbone, classnames=CLASSES):
    if kind == 'ivlp':
        return IVLP(backbone, depth_text=3, depth_vision=3, classnames=classnames)
    return VPT(backbone, n_ctx_vision=4, depth=3, classnames=classnames)


@pytest.mark.parametrize('kind', ['ivlp', 'vpt'])
@torch.no_grad()
def test_prompts_for_another_label_space(backbone, kind):
    """PromptAlign/PromptSync's proxy label spaces: the same learnable state on other class names."""
    learner = randomise(make(kind, backbone))
    other = make(kind, backbone, OTHER)
    other.restore(learner.snapshot())
    model, ref = PromptedCLIP(backbone, learner), PromptedCLIP(backbone, other)
    assert torch.allclose(model.text_features(learner.prompts_for(OTHER)), ref.text_features(), atol=1e-6)
    assert torch.allclose(model.image_features(images(), learner.prompts_for(OTHER)), ref.image_features(images()),
                          atol=1e-6)
    assert learner.classnames == CLASSES and model.text_features().shape[0] == len(CLASSES)


@pytest.mark.parametrize('kind', ['ivlp', 'vpt'])
def test_snapshot_restore_and_checkpoint_round_trip(backbone, kind, tmp_path):
    learner = randomise(make(kind, backbone))
    snap = learner.snapshot()
    before = [id(p) for p in learner.parameters()]
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(torch.randn_like(p))
    assert all(not torch.equal(v, snap[k]) for k, v in learner.state_dict().items())
    learner.restore(snap)
    assert all(torch.equal(v, snap[k]) for k, v in learner.state_dict().items())
    assert before == [id(p) for p in learner.parameters()]
    path = save_prompt_checkpoint(learner.state_dict(), tmp_path / 'p.safetensors', dict(prompt_learner=kind))
    fresh = make(kind, backbone)
    load_prompt_checkpoint(fresh, path)
    with torch.no_grad():
        assert torch.equal(PromptedCLIP(backbone, fresh)(images()), PromptedCLIP(backbone, learner)(images()))


def release_keys(depth_text, depth_vision):
    """The keys of the release's CustomCLIP state dict (what Dassl saves) that matter, plus frozen ones."""
    keys = ['prompt_learner.ctx', 'prompt_learner.token_prefix', 'prompt_learner.token_suffix', 'logit_scale',
            'image_encoder.conv1.weight', 'image_encoder.transformer.resblocks.0.attn.in_proj_weight',
            'text_encoder.positional_embedding', 'text_encoder.transformer.resblocks.1.ln_1.weight']
    if depth_vision:
        keys.append('image_encoder.VPT')
    keys += [f'image_encoder.transformer.resblocks.{i}.VPT_shallow' for i in range(1, depth_vision)]
    keys += [f'text_encoder.transformer.resblocks.{i}.VPT_shallow' for i in range(1, depth_text)]
    return keys


def test_release_keys_map_onto_the_learner_keys(backbone):
    ivlp = IVLP(backbone, depth_text=3, depth_vision=2)
    mapped = {k: ivlp_module.release_key(k) for k in release_keys(3, 2)}
    assert {v for v in mapped.values() if v} == set(ivlp.state_dict())
    assert mapped['text_encoder.transformer.resblocks.2.VPT_shallow'] == 'deep_text.2'
    assert mapped['image_encoder.transformer.resblocks.1.VPT_shallow'] == 'deep_vision.1'
    assert ivlp_module.release_key('module.image_encoder.VPT') == 'vision_ctx'
    assert mapped['prompt_learner.token_prefix'] is None and mapped['logit_scale'] is None
    vpt = VPT(backbone, n_ctx_vision=4, depth=3)
    got = {vpt_module.release_key(k) for k in release_keys(1, 3)} - {None}
    assert got == set(vpt.state_dict())


# ---------------------------------------------------------------------------------------------------- TTA
@pytest.mark.parametrize('kind', ['ivlp', 'vpt'])
def test_tpt_on_ivlp_and_vpt_moves_the_prompts_and_resets(backbone, kind):
    torch.manual_seed(3)
    learner = make(kind, backbone)
    init = learner.snapshot()
    moved = {}

    class Spy(Hook):
        batch_safe = True

        def after_step(self, runner, ctx):
            moved.update({k: not torch.equal(v, init[k]) for k, v in ctx.model.prompt_learner.state_dict().items()})
    tta = EpisodicTTA(PromptedCLIP(backbone, learner), losses=[dict(type='MarginalEntropyLoss')],
                      selection=dict(type='ConfidenceSelection', ratio=0.25), optimizer=dict(type='AdamW', lr=0.05),
                      steps=1, hooks=HookList([Spy()]), mode='reference')  # the fast engine: test_fast_engine.py
    g = torch.Generator().manual_seed(1)
    batch = dict(views=torch.randn(2, 8, 3, 32, 32, generator=g), label=torch.tensor([0, 1]),
                 index=torch.tensor([0, 1]), path=['a', 'b'])
    results = tta.process_batch(batch)
    assert len(results) == 2 and all(torch.isfinite(r.logits).all() for r in results)
    assert moved and all(moved.values()), moved  # every tensor of the learner took the step
    assert all(torch.equal(v, init[k]) for k, v in learner.state_dict().items())  # episodic: reset afterwards


def test_ivlp_text_and_vision_update_phases_move_their_branch_only(backbone):
    torch.manual_seed(3)
    learner = IVLP(backbone, depth_text=3, depth_vision=3)
    model = PromptedCLIP(backbone, learner)
    model.set_classnames(CLASSES)
    views = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for update, branch in (('text', 'ctx deep_text'), ('vision', 'vision_ctx deep_vision')):
        init = learner.snapshot()
        tta = EpisodicTTA(model, losses=[dict(type='MarginalEntropyLoss')], optimizer=dict(type='SGD', lr=10.0),
                          update=update, reset=dict(type='NoReset'), mode='reference')
        tta.process_sample(views, 0, 0)
        changed = {k for k, v in learner.state_dict().items() if not torch.equal(v, init[k])}
        assert changed == {k for k in init if k.split('.')[0] in branch.split()}, update
    with pytest.raises(ConfigError, match="needs a 'text' branch"):
        EpisodicTTA(PromptedCLIP(backbone, make('vpt', backbone)), losses=[dict(type='MarginalEntropyLoss')],
                    update='text')


# ---------------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize('kind', ['ivlp', 'vpt'])
def test_shapes_training_config_moves_only_the_learner(kind, tmp_path):
    """configs/shapes/{kind}_fewshot.py through the Runner (what tools/train.py runs), shrunk to 1 epoch of 1 shot
    without validation."""
    from pathlib import Path

    from promptsync import engine
    from promptsync.models import build_model
    from promptsync.utils.config import load_config
    from promptsync.utils.seeding import seed_everything

    root = Path(__file__).resolve().parents[2]
    shapes = dict(root=str(tmp_path / 'shapes'), workers=1)
    cfg = load_config(root / f'configs/shapes/{kind}_fewshot.py', {
        'train_data.dataset': dict(shapes, per_class=1), 'train_data.num_shots': 1, 'val_data': None,
        'trainer.epochs': 1, 'trainer.warmup_epochs': 0, 'trainer.log_interval': 0,
        'work_dir': str(tmp_path / 'run'), 'device': 'cpu', 'default_hooks.progress.disable': True})
    result = engine.fit_prompts(cfg)
    seed_everything(int(cfg.seed))
    fresh = build_model(cfg.model, result.model.classnames, 'cpu')
    assert type(result.model.prompt_learner).__name__ == kind.upper()
    for k, v in fresh.backbone.state_dict().items():
        assert torch.equal(v, result.model.backbone.state_dict()[k]), k
    trained = result.model.prompt_learner.state_dict()
    assert trained.keys() == fresh.prompt_learner.state_dict().keys()
    assert all(not torch.equal(v, trained[k]) for k, v in fresh.prompt_learner.state_dict().items())
    fresh_learner = build_model(dict(cfg.model, prompt_checkpoint=str(result.checkpoint)), result.model.classnames,
                                'cpu').prompt_learner
    assert all(torch.equal(v, trained[k]) for k, v in fresh_learner.state_dict().items())


def test_recipe_configs_carry_the_release_values():
    """The ViT-B/16 bases against MaPLe's repo's yaml files (IVLP 2+2ctx, VPT _4)."""
    from pathlib import Path

    from promptsync.utils.config import load_config
    base = Path(__file__).resolve().parents[2] / 'configs/_base_'
    ivlp = load_config(base / 'models/ivlp_vit_b16.py').model
    assert ivlp.prompt_learner.to_dict() == dict(type='IVLP', n_ctx_text=2, n_ctx_vision=2, ctx_init='a photo of a',
                                                 depth_text=12, depth_vision=12)
    vpt = load_config(base / 'models/vpt_vit_b16.py').model
    assert vpt.prompt_learner.to_dict() == dict(type='VPT', n_ctx_vision=8, depth=12, templates='single')
    assert ivlp.backbone.model_name == vpt.backbone.model_name == 'ViT-B-16-quickgelu'
    for name, lr in (('ivlp', 0.0035), ('vpt', 0.0025)):
        cfg = load_config(base / f'train/{name}_fewshot.py')
        assert cfg.train_data.num_shots == 16 and cfg.train_data.batch_size == 4
        assert cfg.trainer.optimizer.to_dict() == dict(type='SGD', lr=lr, momentum=0.9, weight_decay=5e-4)
        assert (cfg.trainer.epochs, cfg.trainer.warmup_epochs, cfg.trainer.warmup_lr) == (5, 1, 1e-5)
        assert cfg.trainer.final_model == 'last'
