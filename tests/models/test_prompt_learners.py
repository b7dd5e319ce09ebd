"""Prompt learners: layouts against naive constructions, equivalences, state handling."""
import pytest
import torch

from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe, TemplatePrompts

from ..conftest import CLASSES


def test_coop_init_from_words_equals_the_hand_written_prompt(backbone):
    """CoOp initialised from 'a photo of a' gives exactly the text features of 'a photo of a {c}.'."""
    coop = CoOp(backbone, ctx_init='a photo of a', classnames=CLASSES)
    assert coop.n_ctx == 4
    ids = backbone.tokenize(['a photo of a'])
    assert torch.equal(coop.ctx.data, backbone.embed_tokens(ids)[0, 1:5])
    with torch.no_grad():
        learned = PromptedCLIP(backbone, coop).text_features()
        template = PromptedCLIP(backbone, TemplatePrompts(backbone, 'single', CLASSES)).text_features()
    assert torch.allclose(learned, template, atol=1e-6)


@pytest.mark.parametrize('position', ['end', 'middle', 'front'])
def test_class_token_positions_match_naive_construction(backbone, position):
    torch.manual_seed(0)
    coop = CoOp(backbone, n_ctx=4, ctx_init=None, class_token_position=position, classnames=CLASSES)
    emb = coop().text.embeddings
    tok = backbone.tokenizer
    for c, name in enumerate(CLASSES):  # naive per-class build: [SOS] parts... [.][EOT]
        name_ids = tok.encode(name.replace('_', ' '))
        name_emb = backbone.embed_tokens(torch.tensor([name_ids]))[0]
        ctx = coop.ctx.detach()
        parts = {'end': [ctx, name_emb], 'front': [name_emb, ctx],
                 'middle': [ctx[:2], name_emb, ctx[2:]]}[position]
        body = torch.cat(parts)
        n = body.shape[0]
        assert torch.allclose(emb[c, 1:1 + n].detach(), body, atol=0), (position, name)
        assert int(coop.token_ids[c, 1 + n]) == tok.encode('.')[0]
        assert int(coop.token_ids[c].argmax()) == 2 + n  # EOT right after the period


def test_class_specific_context(backbone):
    coop = CoOp(backbone, n_ctx=3, ctx_init=None, class_specific=True, classnames=CLASSES)
    assert coop.ctx.shape == (len(CLASSES), 3, backbone.text_width)
    emb = coop().text.embeddings
    assert torch.equal(emb[2, 1:4].detach(), coop.ctx[2].detach())
    with pytest.raises(ValueError, match='class-specific'):
        coop.set_classnames(CLASSES[:2])


def test_ctx_init_token_count_is_checked(backbone):
    with pytest.raises(ValueError, match='has 4 tokens'):
        CoOp(backbone, n_ctx=5, ctx_init='a photo of a')
    with pytest.raises(ValueError, match='ctx_init=None'):
        CoOp(backbone, n_ctx=2, ctx_init='a photo', class_token_position='front', classnames=CLASSES)


def test_template_ensemble_is_mean_of_normalised_features(backbone):
    templates = ['a photo of a {}.', 'a sketch of a {}.', 'art of the {}.']
    with torch.no_grad():
        ens = PromptedCLIP(backbone, TemplatePrompts(backbone, templates, CLASSES)).text_features()
        per = torch.stack([PromptedCLIP(backbone, TemplatePrompts(backbone, [t], CLASSES)).text_features()
                           for t in templates])
    expected = torch.nn.functional.normalize(per.mean(0), dim=-1)
    assert torch.allclose(ens, expected, atol=1e-6)


def test_shipped_template_sets():
    from promptsync.datasets.resources import load_templates
    assert load_templates('single') == ['a photo of a {}.']
    t80 = load_templates('imagenet80')
    assert len(t80) == 80 and len(set(t80)) == 80 and t80[0] == 'a bad photo of a {}.'
    with pytest.raises(FileNotFoundError, match='imagenet80'):
        load_templates('imagenet81')
    with pytest.raises(ValueError, match='exactly one'):
        load_templates(['no placeholder'])


def test_maple_shapes_keys_and_widths(backbone):
    maple = MaPLe(backbone, n_ctx=2, depth=3, classnames=CLASSES)
    keys = set(maple.state_dict())
    assert keys == {'ctx', 'proj.weight', 'proj.bias', 'compound_prompts_text.0', 'compound_prompts_text.1',
                    'compound_prompt_projections.0.weight', 'compound_prompt_projections.0.bias',
                    'compound_prompt_projections.1.weight', 'compound_prompt_projections.1.bias'}
    assert maple.proj.weight.shape == (backbone.vision_width, backbone.text_width)
    p = maple()
    assert set(p.text.deep) == {1, 2} and set(p.vision.deep) == {1, 2}
    assert p.vision.shallow.shape == (2, backbone.vision_width)
    assert torch.allclose(p.vision.deep[2], maple.compound_prompt_projections[1](maple.compound_prompts_text[1]))
    # the initial context is "a photo"
    assert torch.equal(maple.ctx.data, backbone.embed_tokens(backbone.tokenize(['a photo']))[0, 1:3])
    assert maple.has_vision_prompts
    with pytest.raises(ValueError, match='depth=4'):
        MaPLe(backbone, depth=4)
    assert {id(x) for x in maple.branch_parameters('vision')} == \
        {id(x) for x in [maple.proj.weight, maple.proj.bias, *maple.compound_prompt_projections.parameters()]}


def test_maple_depth_one_has_no_deep_prompts(backbone):
    p = MaPLe(backbone, depth=1, classnames=CLASSES)()
    assert p.text.deep == {} and p.vision.deep == {}


@pytest.mark.parametrize('cls', [CoOp, MaPLe])
def test_snapshot_restore_is_bit_exact(backbone, cls):
    learner = cls(backbone, classnames=CLASSES)
    snap = learner.snapshot()
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(torch.randn_like(p))
    assert any(not torch.equal(v, snap[k]) for k, v in learner.state_dict().items())
    params_before = [id(p) for p in learner.parameters()]
    learner.restore(snap)
    for k, v in learner.state_dict().items():
        assert torch.equal(v, snap[k]), k
    assert params_before == [id(p) for p in learner.parameters()]  # same tensors: optimizers stay valid
    with pytest.raises(KeyError, match='do not match'):
        learner.restore({'ctx': snap['ctx']} if cls is MaPLe else {})


def test_learner_parameters_exclude_the_backbone(backbone):
    learner = MaPLe(backbone, classnames=CLASSES)
    n = sum(p.numel() for p in learner.parameters())
    d_t, d_v = backbone.text_width, backbone.vision_width
    assert n == 2 * d_t + (d_t * d_v + d_v) + 2 * (2 * d_t) + 2 * (d_t * d_v + d_v)
