"""DPE against hand computations and an independent naive re-computation of the official per-sample step, and the
contract of online methods (state round trip, batch-size independence, state carried along the stream)."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from promptsync.errors import ConfigError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import TemplatePrompts
from promptsync.tta.memory import ClassPriorityQueue
from promptsync.tta.methods import DPE
from promptsync.tta.methods.dpe_prototypes import (entropy_ratio, evolve_text_prototypes, prototype_affinity_logits,
                                                   prototype_alignment, queue_prototypes)
from promptsync.utils.config import load_config

from ..conftest import CLASSES
from ..tools.helpers import ROOT, load_tool, options

ALPHA, BETA, LR, ALIGN, TAU, CAP = 1.0, 3.0, 0.01, 0.5, 0.17, 2


def make_dpe(backbone, **kw):
    model = PromptedCLIP(backbone, TemplatePrompts(backbone, classnames=CLASSES))
    args = dict(alpha=ALPHA, beta=BETA, text_lr=LR, image_lr=LR, align_weight=ALIGN, text_update_threshold=TAU,
                queue_capacity=CAP, selection=dict(type='ConfidenceSelection', ratio=0.25))
    args.update(kw)
    return DPE(model, **args)


def stream(n, seed=0, v=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, v, 3, 32, 32, generator=g)


def batch(views, start=0):
    n = views.shape[0]
    return dict(views=views, label=torch.arange(start, start + n) % len(CLASSES),
                index=torch.arange(start, start + n), path=[''] * n)


def run(method, views, batch_size=1, start=0):
    out = []
    for s in range(0, views.shape[0], batch_size):
        out += [r.logits for r in method.process_batch(batch(views[s:s + batch_size], start + s))]
    return torch.stack(out)


# ---------------------------------------------------------------------- the pieces, by hand
def test_cumulative_average_counts_the_zero_shot_prototypes_once():
    t0, w1, w2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.6, 0.8]])
    t1, n1 = evolve_text_prototypes(t0, w1, 0)
    t2, n2 = evolve_text_prototypes(t1, w2, n1)
    assert (n1, n2) == (1, 2)
    assert torch.allclose(t1, torch.tensor([[0.5, 0.5]]))
    assert torch.allclose(t2, (t0 + w1 + w2) / 3)           # (T0 + T*_1 + T*_2) / 3, not re-normalised


def test_entropy_ratio_is_nats_over_log2_classes():
    uniform4 = torch.tensor(math.log(4))
    assert entropy_ratio(uniform4, 4) == pytest.approx(math.log(4) / 2)  # ln 4 / log2 4 = 0.693, as utils.get_entropy


def test_queue_prototypes_are_the_mean_of_the_held_items_classes_ascending():
    q = ClassPriorityQueue(3, 2, 2)
    q.push(2, torch.tensor([1.0, 0.0]), 0.3)
    q.push(0, torch.tensor([0.0, 2.0]), 0.2)
    q.push(2, torch.tensor([3.0, 4.0]), 0.1)
    classes, protos = queue_prototypes(q)
    assert classes.tolist() == [0, 2]
    assert torch.allclose(protos, torch.tensor([[0.0, 2.0], [2.0, 2.0]]))


def test_affinity_logits_by_hand():
    f = torch.tensor([[0.6, 0.8]])
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = prototype_affinity_logits(f, protos, torch.tensor([0, 2]), 3, alpha=2.0, beta=5.0)
    want = torch.tensor([[2 * math.exp(-5 * 0.4), 0.0, 2 * math.exp(-5 * 0.2)]])
    assert torch.allclose(out, want)


def test_alignment_is_infonce_over_the_classes():
    g = torch.Generator().manual_seed(0)
    v, t = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    naive = 0.0
    for k in range(3):
        sims = [float(F.cosine_similarity(v[k], t[j], dim=0)) / 0.07 for j in range(3)]
        naive += -(sims[k] - math.log(sum(math.exp(s) for s in sims))) / 3
    assert float(prototype_alignment(v, t, 0.07)) == pytest.approx(naive, rel=1e-5)


class TableModel:
    """A model whose image features are the views' first pixels (view ``[E, 1, 1]``) and whose text features are
    fixed: the queue update can be set up exactly."""

    def __init__(self, text, scale=10.0):
        self.text, self.scale = text, scale
        self.backbone = type('B', (), dict(device=torch.device('cpu'), logit_scale=lambda s: torch.tensor(scale)))()

    def text_features(self):
        return self.text.clone()

    def image_features(self, views):
        return F.normalize(views.flatten(1), dim=-1)

    def logits(self, f, t):
        return self.scale * f @ t.t()


GATE = 0.1  # the naive-step streams below cross it both ways


def table_stream(n, classes=4, dim=16, v=8, seed=0):
    """CLIP-like features: text features close to each other (cos ~0.8), image features across a modality gap
    (a shared image direction) leaning towards the text feature of class ``i % classes``, so that the InfoNCE
    alignment is far from saturated. Returns the text features and ``n`` samples of ``v`` views."""
    g = torch.Generator().manual_seed(seed)
    text = F.normalize(2 * torch.randn(dim, generator=g) + torch.randn(classes, dim, generator=g), dim=-1)
    gap = F.normalize(torch.randn(dim, generator=g), dim=0)
    views = torch.stack([0.5 * text[i % classes] + gap + 0.2 * torch.randn(v, dim, generator=g) for i in range(n)])
    return text, views.view(n, v, dim, 1, 1)


# ---------------------------------------------------------------------- the official step, naively
def naive_entropy(logits):
    p = torch.softmax(logits, dim=-1)
    return -(p * torch.log(p)).sum()


def naive_sample(model, views, T, queue, updates, predict_views='original', tau=TAU, k=2):
    """One sample of DPE's run_test_dpe written out in float64: list queues, loops, the closed-form first AdamW step."""
    feats = model.image_features(views).double()
    scale = float(model.backbone.logit_scale())
    C = T.shape[0]

    def confident(text):
        logits = scale * feats @ text.t()
        ent = [float(naive_entropy(row)) for row in logits]
        sel = sorted(range(len(ent)), key=lambda i: ent[i])[:k]
        probs = torch.softmax(logits[sel], dim=-1).mean(0)
        return feats[sel].mean(0), logits[sel].mean(0), float(naive_entropy(torch.log(probs)))

    f, z, h = confident(T / T.norm(dim=1, keepdim=True))
    label, h = int(z.argmax()), h / math.log2(C)
    items = queue.setdefault(label, [])
    if len(items) < CAP:
        items.append((f, h))
    elif h < items[-1][1]:
        items[-1] = (f, h)
    items.sort(key=lambda it: it[1])
    classes = sorted(queue)
    V0 = torch.stack([sum(it[0] for it in queue[c]) / len(queue[c]) for c in classes])

    def final_logits(f, z, text, vis):
        cache = torch.zeros(C, dtype=torch.float64)
        for j, c in enumerate(classes):
            cache[c] = ALPHA * torch.exp(-BETA * (1 - f @ vis[j]))
        return z + cache

    def loss(r_t, r_v):
        text = (T + r_t) / (T + r_t).norm(dim=1, keepdim=True)
        vis = (V0 + r_v) / (V0 + r_v).norm(dim=1, keepdim=True)
        sel_z = confident_sel_logits(text)
        ent = naive_entropy(final_logits(f, sel_z, text, vis))
        nce = 0.0
        for a, c in enumerate(classes):
            sims = torch.stack([vis[a] @ text[b] / 0.01 for b in classes])
            nce = nce - torch.log_softmax(sims, dim=0)[a] / len(classes)
        return ent + ALIGN * nce

    text0 = T / T.norm(dim=1, keepdim=True)
    ent0 = [float(naive_entropy(row)) for row in scale * feats @ text0.t()]
    sel0 = sorted(range(len(ent0)), key=lambda i: ent0[i])[:k]

    def confident_sel_logits(text):
        return (scale * feats[sel0] @ text.t()).mean(0)

    r_t = torch.zeros_like(T, requires_grad=True)
    r_v = torch.zeros_like(V0, requires_grad=True)
    g_t, g_v = torch.autograd.grad(loss(r_t, r_v), [r_t, r_v])
    step_t, step_v = -LR * g_t / (g_t.abs() + 1e-3), -LR * g_v / (g_v.abs() + 1e-3)  # AdamW step 1 from zero
    text = (T + step_t) / (T + step_t).norm(dim=1, keepdim=True)
    vis = (V0 + step_v) / (V0 + step_v).norm(dim=1, keepdim=True)
    with torch.no_grad():
        if predict_views == 'original':
            out = final_logits(feats[0], scale * feats[0] @ text.t(), text, vis)
        else:
            f1, z1, _ = confident(text)
            out = final_logits(f1, z1, text, vis)
    if naive_entropy(out) / math.log2(C) < tau:
        updates += 1
        T = T * (updates / (updates + 1)) + text / (updates + 1)
    return out, T, queue, updates, step_t


def queue_lists(queue):
    return {c: [(queue.keys[c, j].double(), float(queue.scores[c, j])) for j in range(int(n))]
            for c, n in enumerate(queue.counts) if n}


@pytest.mark.parametrize('predict_views', ['original', 'selected'])
def test_each_sample_matches_the_naive_official_step(predict_views):
    """Sample by sample from the method's own state (float32 rounding does not pile up along the stream)."""
    text, views = table_stream(8)
    dpe = DPE(TableModel(text, scale=30.0), alpha=ALPHA, beta=BETA, text_lr=LR, image_lr=LR, align_weight=ALIGN,
              text_update_threshold=GATE, queue_capacity=CAP, selection=dict(type='ConfidenceSelection', ratio=0.25),
              predict_views=predict_views)
    steps, aligned = [], []
    for i in range(8):
        T, queue, updates = dpe.text_prototypes.double().clone(), queue_lists(dpe.queue), dpe.counters['text_updates']
        got = run(dpe, views[i:i + 1], start=i)[0]
        want, T, queue, updates, step_t = naive_sample(dpe.model, views[i], T, queue, updates, predict_views, GATE)
        steps.append(float(step_t.abs().max()))
        aligned.append(len(queue))
        assert torch.allclose(got.double(), want, atol=5e-5, rtol=1e-6), i
        assert dpe.counters['text_updates'] == updates
        assert torch.allclose(dpe.text_prototypes.double(), T, atol=1e-6)
        mine = queue_lists(dpe.queue)
        assert sorted(mine) == sorted(queue)
        for c, items in queue.items():
            assert [h for _, h in mine[c]] == pytest.approx([h for _, h in items], abs=1e-6)
            assert torch.allclose(torch.stack([f for f, _ in mine[c]]), torch.stack([f for f, _ in items]), atol=1e-6)
    assert max(steps) > 100 * 5e-5                          # the residual step is far larger than the tolerance
    assert 0 < dpe.counters['text_updates'] < 8             # the gate both opened and stayed shut
    assert max(aligned) >= 3                                # InfoNCE over several classes


def test_gate_off_keeps_the_zero_shot_text_prototypes(backbone):
    dpe = make_dpe(backbone, text_update_threshold=0.0)     # H / log2 C < 0 never holds
    start = dpe.text_prototypes.clone()
    run(dpe, stream(2))
    assert dpe.counters['text_updates'] == 0 and torch.equal(dpe.text_prototypes, start)
    dpe = make_dpe(backbone, text_update_threshold=10.0)    # always holds
    run(dpe, stream(2))
    assert dpe.counters['text_updates'] == 2 and not torch.equal(dpe.text_prototypes, start)


def test_zero_steps_is_clip_plus_the_visual_prototype_logits(backbone):
    dpe = make_dpe(backbone, steps=0)
    views = stream(1)[0]
    got = run(dpe, views[None])[0]
    feats = dpe.model.image_features(views).detach()
    text = F.normalize(dpe.initial_text, dim=-1)
    z = dpe.model.logits(feats, text)
    entropy = -(z.softmax(-1) * z.log_softmax(-1)).sum(-1)
    sel = torch.argsort(entropy)[:2]
    f = feats[sel].mean(0)
    proto = F.normalize(f, dim=0)                         # one queued item: the prototype is that feature
    want = dpe.model.logits(feats[:1], text)[0].clone()
    want[int(z[sel].mean(0).argmax())] += ALPHA * math.exp(-BETA * (1 - float(feats[0] @ proto)))
    assert torch.allclose(got, want, atol=1e-5)


def test_queue_takes_the_mean_confident_feature_under_its_pseudo_label():
    """View 0 alone points to class 1; the two confident views (of four) point to class 0: the queued item is the
    (not re-normalised) mean of the confident views' features under class 0, with DPE's entropy ratio."""
    text = torch.eye(3)
    views = torch.tensor([[0.1, 1.0, 0.0], [1.0, 0.0, 0.05], [1.0, 0.05, 0.0], [0.5, 0.5, 0.5]]).view(4, 3, 1, 1)
    dpe = DPE(TableModel(text), queue_capacity=2, selection=dict(type='ConfidenceSelection', ratio=0.5), steps=0)
    dpe.process_batch(dict(views=views[None], label=torch.tensor([0]), index=torch.tensor([0]), path=['']))
    feats = F.normalize(views.flatten(1), dim=-1)
    assert dpe.queue.counts.tolist() == [1, 0, 0]
    assert torch.allclose(dpe.queue.keys[0, 0], (feats[1] + feats[2]) / 2)
    probs = torch.softmax(10.0 * feats[1:3] @ text.t(), dim=-1).mean(0)
    assert float(dpe.queue.scores[0, 0]) == pytest.approx(float(-(probs * probs.log()).sum()) / math.log2(3), rel=1e-5)


# ---------------------------------------------------------------------- the online contract
def test_state_round_trip_resumes_exactly(backbone, tmp_path):
    views = stream(6, seed=2)
    full = run(make_dpe(backbone, text_update_threshold=1.0), views)   # every sample evolves the text prototypes
    first = make_dpe(backbone, text_update_threshold=1.0)
    head = run(first, views[:3])
    assert first.counters['text_updates'] == 3 and len(first.queue) >= 1
    save_file(first.state_dict(), tmp_path / 'state.safetensors')
    fresh = make_dpe(backbone, text_update_threshold=1.0)
    fresh.load_state_dict(load_file(tmp_path / 'state.safetensors'))
    tail = run(fresh, views[3:], start=3)
    assert torch.equal(torch.cat([head, tail]), full)
    assert fresh.summary()['samples'] == 6


def test_predictions_do_not_depend_on_the_batch_size(backbone):
    views = stream(5, seed=3)
    one = run(make_dpe(backbone), views, batch_size=1)
    three = run(make_dpe(backbone), views, batch_size=3)
    assert torch.equal(one, three)


def test_state_is_carried_across_samples(backbone):
    views = stream(2, seed=4)
    fresh_second = run(make_dpe(backbone), views[1:], start=1)[0]
    carried = make_dpe(backbone)
    second = run(carried, views)[1]
    assert not torch.allclose(second, fresh_second, atol=1e-4)
    s = carried.summary()
    assert s['samples'] == 2 and s['queue_added'] == s['queued_features'] == 2


def test_bad_state_and_config_are_refused(backbone):
    dpe = make_dpe(backbone)
    state = dpe.state_dict()
    with pytest.raises(ConfigError, match='text prototypes'):
        dpe.load_state_dict(dict(state, text_prototypes=torch.zeros(3, 5)))
    with pytest.raises(ConfigError, match='missing'):
        dpe.load_state_dict({k: v for k, v in state.items() if k != 'count_samples'})
    with pytest.raises(ConfigError, match='queue'):
        make_dpe(backbone, queue_capacity=3).load_state_dict(state)
    with pytest.raises(ConfigError, match='text_lr'):
        make_dpe(backbone, optimizer=dict(type='AdamW', lr=1e-3))
    with pytest.raises(ConfigError, match='predict_views'):
        make_dpe(backbone, predict_views='all')
    with pytest.raises(ConfigError, match='queue_capacity'):
        make_dpe(backbone, queue_capacity=0)


# ---------------------------------------------------------------------- configs
def test_configs_carry_the_official_yaml_values():
    base = load_config(ROOT / 'configs/_base_/tta/dpe.py').tta
    assert (base.alpha, base.beta, base.queue_capacity, base.text_lr, base.align_weight) == (6.0, 5.0, 3, 6e-4, 0.5)
    assert base.views.n_views == 64 and base.views.augmix and base.selection.ratio == 0.1
    r = load_config(ROOT / 'configs/dpe/vit_b16_imagenet_r.py')
    assert (r.tta.alpha, r.tta.beta, r.tta.text_lr, r.tta.align_weight) == (3.0, 8.0, 6e-4, 0.0)
    assert r.model.prompt_learner.templates == 'imagenet80'
    pets = load_config(ROOT / 'configs/dpe/vit_b16_cross_dataset.py')
    assert (pets.tta.alpha, pets.tta.beta, pets.tta.text_lr, pets.tta.align_weight) == (4.0, 7.0, 5e-5, 0.2)
    assert pets.tta.views.to_dict() == dict(type='OriginalView') and pets.data.dataset.type == 'OxfordPets'
    shapes = load_config(ROOT / 'configs/shapes/dpe.py')
    assert shapes.tta.views.to_dict() == dict(type='OriginalView') and shapes.data.stream.order == 'shuffled'


def test_imagenet_r_config_runs_end_to_end(tmp_path, tiny_overrides):
    overrides = dict(tiny_overrides, **{'tta.views.n_views': 8, 'tta.selection.ratio': 0.25, 'data.max_samples': 4})
    out = load_tool('test').main([str(ROOT / 'configs/dpe/vit_b16_imagenet_r.py'), '--work-dir', str(tmp_path),
                                  *options(overrides)])
    assert out['num_samples'] == 4 and out['method'] == 'DPE'
    stats = json.loads((tmp_path / 'metrics.json').read_text())['method_stats']
    assert stats['samples'] == 4 and stats['queued_features'] >= 1
