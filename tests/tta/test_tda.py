"""TDA: the cache rules and read-out against hand computations, the whole method against an independent naive
(list-based) implementation of the official loop, and the online contract (state round trip, batch size)."""
import json
import math
import operator
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, save

from promptsync.errors import ConfigError, ProvenanceError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import TemplatePrompts
from promptsync.tta.memory import ClassPriorityQueue, NegativeCache, affinity_logits
from promptsync.tta.methods import TDA
from promptsync.tta.methods.tda import (NEGATIVE_DEFAULTS, POSITIVE_DEFAULTS, SampleReading,
                                         official_normalised_entropy)

from ..conftest import CLASSES

N_VIEWS, RATIO = 8, 0.25          # 2 confident views of 8
# small caches and a wide negative window, so that a short stream fills, replaces and admits
SMALL = dict(positive=dict(shot_capacity=2, alpha=2.0, beta=5.0),
             negative=dict(shot_capacity=1, alpha=0.5, beta=1.0, entropy_threshold=(0.0, 0.7),
                           mask_threshold=(0.03, 1.0)))
TDA_DEFAULTS = dict(positive={}, negative={})


@pytest.fixture(scope='module')
def model(backbone):
    return PromptedCLIP(backbone, TemplatePrompts(backbone, classnames=CLASSES))


def make_tda(model, **kw):
    args = dict(SMALL, selection=dict(type='ConfidenceSelection', ratio=RATIO))
    args.update(kw)
    return TDA(model, **args)


def stream(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, N_VIEWS, 3, 32, 32, generator=g)


def batch(views, start):
    n = views.shape[0]
    return dict(views=views, label=torch.zeros(n, dtype=torch.long), index=torch.arange(start, start + n),
                path=[''] * n)


def run(tda, views, batch_size):
    out = []
    for s in range(0, views.shape[0], batch_size):
        out += tda.process_batch(batch(views[s:s + batch_size], s))
    return torch.stack([r.logits for r in out])


# ---------------------------------------------------------------------------------------------- the queue
def test_queue_keeps_the_lowest_scores_sorted_ties_in_arrival_order():
    q = ClassPriorityQueue(num_classes=2, capacity=3, key_dim=1)
    key = lambda x: torch.tensor([float(x)])  # noqa: E731  (the key records the arrival number)
    assert [q.push(1, key(i), s) for i, s in enumerate([0.5, 0.2, 0.9])] == ['added'] * 3
    assert q.scores[1].tolist() == pytest.approx([0.2, 0.5, 0.9]) and q.keys[1, :, 0].tolist() == [1, 0, 2]
    assert q.push(1, key(3), 0.9) == 'rejected'          # not strictly lower than the worst
    assert q.push(1, key(4), 0.3) == 'replaced'          # 0.9 dropped
    assert q.scores[1].tolist() == pytest.approx([0.2, 0.3, 0.5]) and q.keys[1, :, 0].tolist() == [1, 4, 0]
    assert q.push(1, key(5), 0.3) == 'replaced'          # a tie goes after the older equal item; 0.5 dropped
    assert q.keys[1, :, 0].tolist() == [1, 4, 5]
    assert q.counts.tolist() == [0, 3] and len(q) == 3 and torch.isinf(q.scores[0]).all()
    assert q.stats() == dict(items=3, classes=1, added=3, replaced=2, rejected=1)
    keys, classes, values = q.entries()
    assert keys[:, 0].tolist() == [1, 4, 5] and classes.tolist() == [1, 1, 1] and values is None


def naive_update_cache(cache, cls, item, capacity):
    """The official update rule on python lists (an independent reading of kdiAAA/TDA's update_cache)."""
    if cls not in cache:
        cache[cls] = [item]
        return
    if len(cache[cls]) < capacity:
        cache[cls].append(item)
    elif item[1] < cache[cls][-1][1]:
        cache[cls][-1] = item
    cache[cls] = sorted(cache[cls], key=operator.itemgetter(1))


def test_queue_equals_the_list_rule_on_a_random_stream_with_ties():
    g = torch.Generator().manual_seed(3)
    q, cache = ClassPriorityQueue(4, 3, 2), {}
    for i in range(200):
        cls = int(torch.randint(4, (1,), generator=g))
        score = float(torch.randint(6, (1,), generator=g)) / 4   # few distinct values: many ties
        key = torch.tensor([float(i), score])
        q.push(cls, key, score)
        naive_update_cache(cache, cls, (key, score), 3)
    for c in range(4):
        n = int(q.counts[c])
        assert [float(k[0]) for k, _ in cache.get(c, [])] == q.keys[c, :n, 0].tolist()
        assert [s for _, s in cache.get(c, [])] == pytest.approx(q.scores[c, :n].tolist())


def test_queue_refuses_bad_items_and_bad_states():
    q = ClassPriorityQueue(2, 2, 3)
    with pytest.raises(ValueError, match='finite'):
        q.push(0, torch.zeros(3), float('nan'))
    with pytest.raises(ValueError, match='key of 3'):
        q.push(0, torch.zeros(4), 0.1)
    with pytest.raises(IndexError):
        q.push(2, torch.zeros(3), 0.1)
    q.push(0, torch.ones(3), 0.1)
    state = q.state_dict()
    with pytest.raises(ValueError, match='expected'):
        ClassPriorityQueue(2, 3, 3).load_state_dict(state)
    broken = dict(state, scores=torch.tensor([[0.1, 0.0], [math.inf, math.inf]]))  # an empty slot holding a score
    with pytest.raises(ValueError, match='inconsistent'):
        ClassPriorityQueue(2, 2, 3).load_state_dict(broken)


# --------------------------------------------------------------------------------------- cache read-out
def test_affinity_logits_by_hand():
    query = torch.tensor([0.6, 0.8])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    values = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    alpha, beta = 2.0, 5.0
    a = [math.exp(-beta * (1 - 0.6)), math.exp(-beta * (1 - 0.8)), math.exp(-beta * (1 - 1.0))]
    expected = [alpha * (a[0] + a[2]), alpha * a[1], alpha * (a[1] + a[2])]
    assert affinity_logits(query, keys, values, alpha, beta).tolist() == pytest.approx(expected, rel=1e-6)
    assert affinity_logits(query, keys[:0], values[:0], alpha, beta).tolist() == [0.0, 0.0, 0.0]


def test_positive_and_negative_cache_logits_by_hand():
    pos = ClassPriorityQueue(3, 2, 2)
    pos.push(2, torch.tensor([1.0, 0.0]), 0.3)
    pos.push(2, torch.tensor([0.0, 1.0]), 0.1)
    pos.push(0, torch.tensor([0.6, 0.8]), 0.2)
    q = torch.tensor([0.8, 0.6])
    e = lambda aff, beta: math.exp(-beta * (1 - aff))  # noqa: E731
    assert pos.one_hot_logits(q, 2.0, 5.0).tolist() == pytest.approx(
        [2 * e(0.96, 5), 0.0, 2 * (e(0.8, 5) + e(0.6, 5))], rel=1e-6)
    neg = NegativeCache(3, 1, 2, entropy_window=(0.2, 0.5), mask_window=(0.03, 1.0))
    assert neg.push_probs(1, torch.tensor([0.0, 1.0]), 0.4, torch.tensor([0.5, 0.47, 0.03])) == 'added'
    assert neg.values[1, 0].tolist() == [True, True, False]      # 0.03 is not > 0.03
    assert neg.logits(q, 0.117, 1.0).tolist() == pytest.approx([0.117 * e(0.6, 1), 0.117 * e(0.6, 1), 0.0],
                                                               rel=1e-6)


def test_negative_admission_window_is_strict_and_uses_the_official_log2_normalisation():
    neg = NegativeCache(4, 2, 2, entropy_window=(0.2, 0.5))
    assert not neg.admits(0.2) and neg.admits(0.2001) and neg.admits(0.4999) and not neg.admits(0.5)
    # official get_entropy: nats / log2(C); C=4: 0.9 nats -> 0.45 (in the window); / ln(4) it would be 0.649 (out)
    assert official_normalised_entropy(0.9, 4) == pytest.approx(0.45)


def test_update_caches_admits_to_the_negative_cache_inside_the_window_only(model):
    tda = make_tda(model, negative=dict(SMALL['negative'], entropy_threshold=(0.2, 0.5)))
    probs = torch.tensor([0.6, 0.3, 0.08, 0.02])
    for entropy, admitted in ((0.9, True), (0.38, False), (1.02, False), (0.42, True)):  # 0.45, 0.19, 0.51, 0.21
        before = int(tda.neg_cache.outcomes.sum())
        tda.update_caches(SampleReading(feature=torch.randn(tda.text_features.shape[1]), clip_logits=probs.log(),
                                        entropy=torch.tensor(entropy), probs=probs, pseudo_label=0))
        assert (int(tda.neg_cache.outcomes.sum()) > before) == admitted, entropy
    assert tda.neg_cache.values[0, 0].tolist() == [True, True, True, False]
    assert int(tda.pos_cache.outcomes.sum()) == 4   # every image is offered to the positive cache


# --------------------------------------------------------------------------- the method vs a naive loop
def naive_tda(samples, text, scale, pos, neg, ratio):
    """The official loop (get_clip_logits + run_test_tda) written out on lists, dicts and one-hot matrices, for
    each sample's normalised view features ``[V, E]``."""
    num_classes = text.shape[0]
    pos_cache, neg_cache, out = {}, {}, []

    def read(cache, with_mask):
        keys, vals = [], []
        for c in sorted(cache):
            for item in cache[c]:
                keys.append(item[0])
                vals.append(((item[2] > neg['mask_threshold'][0]) & (item[2] < neg['mask_threshold'][1])).float()
                            if with_mask else F.one_hot(torch.tensor(c), num_classes).float())
        return torch.stack(keys), torch.stack(vals)

    for f in samples:
        logits = scale * f @ text.t()
        ent = -(logits.softmax(1) * logits.log_softmax(1)).sum(1)
        idx = torch.argsort(ent)[:int(len(f) * ratio)]
        sel = logits[idx]
        feat, clip_logits = f[idx].mean(0), sel.mean(0)
        p_bar = sel.softmax(1).mean(0)
        loss = -(p_bar * p_bar.log()).sum()
        pred = int(clip_logits.argmax())
        if pos['enabled']:
            naive_update_cache(pos_cache, pred, (feat, float(loss)), pos['shot_capacity'])
        low, high = neg['entropy_threshold']
        if neg['enabled'] and low < float(loss) / math.log2(num_classes) < high:
            naive_update_cache(neg_cache, pred, (feat, float(loss), p_bar), neg['shot_capacity'])
        final = clip_logits.clone()
        if pos_cache:
            keys, vals = read(pos_cache, False)
            final += pos['alpha'] * torch.exp(-pos['beta'] * (1 - feat @ keys.t())) @ vals
        if neg_cache:
            keys, vals = read(neg_cache, True)
            final -= neg['alpha'] * torch.exp(-neg['beta'] * (1 - feat @ keys.t())) @ vals
        out.append(final)
    return torch.stack(out)


class FeatureModel:
    """A stand-in CLIP whose "images" are feature vectors: image_features = the normalised views; lets a test pick
    class-diverse, sharp or uncertain samples."""

    def __init__(self, text, scale):
        self.text, self.scale = text, scale
        self.backbone = SimpleNamespace(device=torch.device('cpu'))

    def text_features(self):
        return self.text

    def image_features(self, views):
        return F.normalize(views, dim=-1)

    def logits(self, image_features, text_features):
        return self.scale * image_features @ text_features.t()


def feature_stream(n, num_classes=5, dim=8, seed=0):
    """``n`` samples of ``N_VIEWS`` views scattered around random class directions (some sharp, some uncertain)."""
    g = torch.Generator().manual_seed(seed)
    text = F.normalize(torch.randn(num_classes, dim, generator=g), dim=-1)
    centres = text[torch.randint(num_classes, (n,), generator=g)]
    noise = torch.rand(n, 1, 1, generator=g) * 1.5 * torch.randn(n, N_VIEWS, dim, generator=g)
    return text, centres[:, None] + noise


@pytest.mark.parametrize('caches', ['official', 'small'])
def test_tda_equals_the_naive_official_loop(caches):
    text, views = feature_stream(40)
    cfg = dict(TDA_DEFAULTS) if caches == 'official' else dict(SMALL)
    pos, neg = {**POSITIVE_DEFAULTS, **cfg['positive']}, {**NEGATIVE_DEFAULTS, **cfg['negative']}
    tda = make_tda(FeatureModel(text, 10.0), positive=pos, negative=neg)
    got = run(tda, views, batch_size=3)
    expected = naive_tda([F.normalize(v, dim=-1) for v in views], text, 10.0, pos, neg, RATIO)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (got - expected).abs().max()
    # the stream exercises every path: several classes, replacements, admissions and refusals, partial masks
    stats = tda.summary()
    assert stats['samples'] == 40 and stats['positive']['classes'] >= 4 and stats['positive']['replaced'] > 0
    assert stats['negative']['replaced'] + stats['negative']['rejected'] > 0
    assert 0 < stats['negative']['admitted'] < 40 or caches == 'small'   # SMALL's window (0, 0.7) admits all: < ln 2
    assert stats['positive']['added'] + stats['positive']['replaced'] + stats['positive']['rejected'] == 40
    masks = tda.neg_cache.values[tda.neg_cache.valid()]
    assert masks.any() and not masks.all()


def test_tda_on_the_tiny_clip_equals_the_naive_loop(model):
    views = stream(6)
    got = run(make_tda(model), views, batch_size=4)
    with torch.no_grad():
        feats = [F.normalize(model.backbone.model.encode_image(v), dim=-1) for v in views]
    scale = float(model.backbone.model.logit_scale.exp())
    pos, neg = {**POSITIVE_DEFAULTS, **SMALL['positive']}, {**NEGATIVE_DEFAULTS, **SMALL['negative']}
    expected = naive_tda(feats, model.text_features(), scale, pos, neg, RATIO)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (got - expected).abs().max()


def test_read_sample_by_hand():
    """The confident views are averaged: features and logits by their mean, probabilities by the mean softmax (not
    the softmax of the mean logits), entropy of that mean probability."""
    text = torch.eye(4)
    tda = TDA(FeatureModel(text, 1.0))
    feats = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    logits = torch.tensor([[10.0, 0, 0, 0], [0, 10.0, 0, 0], [0, 0, 0, 0]])
    r = tda.read_sample(feats, logits, torch.tensor([0, 1]))
    assert r.feature.tolist() == [0.5, 0.5, 0, 0] and r.clip_logits.tolist() == [5.0, 5.0, 0, 0]
    top, rest = math.exp(10) / (math.exp(10) + 3), 1 / (math.exp(10) + 3)   # one view's softmax
    probs = [(top + rest) / 2, (top + rest) / 2, rest, rest]
    assert r.probs.tolist() == pytest.approx(probs, rel=1e-6)
    assert float(r.entropy) == pytest.approx(-sum(p * math.log(p) for p in probs), rel=1e-6)
    assert r.pseudo_label == 0


def test_the_first_image_meets_itself_in_the_cache(model):
    """Official order: the cache is updated with the image before its logits are computed."""
    views = stream(1)
    tda = make_tda(model, negative=dict(enabled=False))
    got = run(tda, views, 1)[0]
    with torch.no_grad():
        logits = model.logits(model.image_features(views[0]), model.text_features())
    sel = tda.selector(logits)
    f, zero_shot = model.image_features(views[0])[sel].mean(0), logits[sel].mean(0)
    bonus = torch.zeros_like(zero_shot)
    bonus[int(zero_shot.argmax())] = 2.0 * math.exp(-5.0 * (1 - float(f @ f)))   # |f| < 1: averaged, not normalised
    assert torch.allclose(got, zero_shot + bonus, atol=1e-5)


def test_the_cache_is_carried_to_the_next_image(model):
    views = stream(2, seed=5)
    alone = run(make_tda(model), views[1:], 1)[0]
    after_first = run(make_tda(model), views, 1)[1]
    assert not torch.allclose(alone, after_first, atol=1e-4)
    # the dependence goes through the caches only: without them the second image ignores the first
    off = dict(positive=dict(enabled=False), negative=dict(enabled=False))
    assert torch.equal(run(make_tda(model, **off), views[1:], 1)[0], run(make_tda(model, **off), views, 1)[1])


# ------------------------------------------------------------------------------------- online contract
def test_predictions_do_not_depend_on_the_batch_size(model):
    views = stream(5, seed=1)
    ref = run(make_tda(model), views, 1)
    assert torch.equal(run(make_tda(model), views, 5), ref)
    text, views = feature_stream(20, seed=1)               # several classes, both caches busy
    make = lambda: make_tda(FeatureModel(text, 10.0), **TDA_DEFAULTS)  # noqa: E731
    ref = run(make(), views, 1)
    for bs in (3, 20):
        assert torch.equal(run(make(), views, bs), ref)


def test_state_round_trip_continues_the_stream_exactly():
    text, views = feature_stream(24, seed=2)
    make = lambda: make_tda(FeatureModel(text, 10.0), **TDA_DEFAULTS)  # noqa: E731
    whole = make()
    ref = run(whole, views, 4)
    first = make()
    head = run(first, views[:13], 4)
    state = load(save(first.state_dict()))                     # through safetensors, as the runner saves it
    fresh = make()
    fresh.load_state_dict(state)
    tail = []
    for s in range(13, 24, 5):
        tail += fresh.process_batch(batch(views[s:s + 5], s))
    assert torch.equal(torch.cat([head, torch.stack([r.logits for r in tail])]), ref)
    assert fresh.summary() == whole.summary() and whole.summary()['negative']['items'] > 0
    for name, tensor in whole.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name


def test_state_shapes_are_fixed_and_mismatches_refused(model):
    tda = make_tda(model)
    empty = tda.state_dict()
    run(tda, stream(3), 3)
    full = tda.state_dict()
    assert {k: v.shape for k, v in empty.items()} == {k: v.shape for k, v in full.items()}
    width = model.text_features().shape[1]
    assert full['positive.keys'].shape == (len(CLASSES), 2, width) and full['negative.values'].shape == (4, 1, 4)
    with pytest.raises(ProvenanceError, match='enabled'):
        make_tda(model, negative=dict(enabled=False)).load_state_dict(full)
    with pytest.raises(ProvenanceError, match='shot_capacity'):
        make_tda(model, positive=dict(SMALL['positive'], shot_capacity=3)).load_state_dict(full)


# ------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize('kw, where', [
    (dict(positive=dict(shots=3)), 'tta.positive'),
    (dict(positive=dict(shot_capacity=0)), 'tta.positive.shot_capacity'),
    (dict(negative=dict(alpha=-1.0)), 'tta.negative.alpha'),
    (dict(negative=dict(entropy_threshold=(0.5, 0.2))), 'tta.negative.entropy_threshold'),
    (dict(negative=dict(mask_threshold=0.03)), 'tta.negative.mask_threshold'),
    (dict(positive=dict(enabled='yes')), 'tta.positive.enabled'),
])
def test_bad_config_is_refused(model, kw, where):
    with pytest.raises(ConfigError) as err:
        TDA(model, **kw)
    assert err.value.where == where


def test_defaults_are_the_official_imagenet_yaml(model):
    tda = TDA(model)
    assert (tda.positive['shot_capacity'], tda.positive['alpha'], tda.positive['beta']) == (3, 2.0, 5.0)
    neg = tda.negative
    assert (neg['shot_capacity'], neg['alpha'], neg['beta']) == (2, 0.117, 1.0)
    assert neg['entropy_threshold'] == (0.2, 0.5) and neg['mask_threshold'] == (0.03, 1.0)
    assert TDA.stateful


# ------------------------------------------------------------------------------------ end to end (tools/test.py)
def test_config_end_to_end_with_its_state_saved(tmp_path, tiny_overrides):
    from safetensors.torch import load_file

    from ..tools.helpers import ROOT, load_tool, options
    ov = dict(tiny_overrides, **{'tta.views.n_views': N_VIEWS, 'tta.views.augmix': False,
                                 'tta.selection.ratio': RATIO, 'data.batch_size': 4})
    out = load_tool('test').main([str(ROOT / 'configs/tda/vit_b16_imagenet_r.py'), '--work-dir', str(tmp_path),
                                  *options(ov)])
    assert out['method'] == 'TDA' and out['num_samples'] == 12
    stats = json.loads((tmp_path / 'metrics.json').read_text())['method_stats']
    assert stats['samples'] == 12 and stats['positive']['items'] >= 1
    state = load_file(tmp_path / 'method_state.safetensors')
    assert int(state['samples_seen']) == 12 and int(state['positive.counts'].sum()) == stats['positive']['items']
