"""Zero: the zero-temperature vote (ties, split votes, the greedy break, its fallback) by hand and against a naive
loop, the emitted logits, and the method on the tiny model (batch-size independent)."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from promptsync.errors import ConfigError
from promptsync.hooks import Hook, HookList
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import TemplatePrompts
from promptsync.tta.methods import Zero
from promptsync.tta.methods.zero_vote import FALLBACK, UNVOTED_MASS, confidence_order, vote_logits, zero_vote
from promptsync.utils.config import load_config

from ..conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def rows(*argmaxes, C=4, peak=5.0):
    """Logits with the given argmax per view (a tuple = a shared maximum)."""
    out = torch.zeros(len(argmaxes), C)
    for i, a in enumerate(argmaxes):
        out[i, list(a) if isinstance(a, tuple) else a] = peak
    return out


def test_vote_counts_and_no_tie():
    logits = rows(2, 2, 0, 1, 3)
    v = zero_vote(logits, torch.tensor([0, 1, 2]), torch.tensor([3, 4]))
    assert v.votes.tolist() == [1.0, 0.0, 2.0, 0.0] and v.pred == 2 and v.tied == (2,) and v.broken_by is None


def test_tie_broken_by_the_first_remaining_view_voting_a_tied_class():
    # kept views vote 0, 1, 0, 1 -> tie {0, 1}; remaining (in this confidence order): view 5 votes 3 (not tied),
    # view 4 votes 1 -> class 1 wins and gets one more vote
    logits = rows(0, 1, 0, 1, 1, 3, 0)
    v = zero_vote(logits, torch.tensor([0, 1, 2, 3]), torch.tensor([5, 4, 6]))
    assert v.tied == (0, 1) and v.pred == 1 and v.broken_by == 4
    assert v.votes.tolist() == [2.0, 3.0, 0.0, 0.0]
    # the order of the remaining views decides
    v = zero_vote(logits, torch.tensor([0, 1, 2, 3]), torch.tensor([6, 4, 5]))
    assert v.pred == 0 and v.broken_by == 6 and v.votes.tolist() == [3.0, 2.0, 0.0, 0.0]


def test_a_shared_maximum_splits_the_vote():
    logits = rows((0, 1), 0, 2)
    v = zero_vote(logits, torch.tensor([0, 1, 2]), torch.tensor([], dtype=torch.long))
    assert v.votes.tolist() == [1.5, 0.5, 1.0, 0.0] and v.pred == 0 and v.tied == (0,)


def test_fallback_when_no_remaining_view_votes_a_tied_class():
    logits = rows(0, 1, 3, 3)
    logits[2, 1] = 4.0   # the most confident remaining view prefers 1 over 0 among the tied classes
    logits[2, 0] = 2.0
    v = zero_vote(logits, torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert v.tied == (0, 1) and v.broken_by == FALLBACK and v.pred == 1
    assert v.votes.tolist() == [1.0, 2.0, 0.0, 0.0]
    # no remaining view at all (ratio 1): the most confident kept view decides among the tied classes
    logits = rows(0, 1)
    logits[1, 0] = 4.0
    v = zero_vote(logits, torch.tensor([1, 0]), torch.tensor([], dtype=torch.long))
    assert v.broken_by == FALLBACK and v.pred == 1


def test_confidence_order_is_by_entropy_then_view_index():
    logits = torch.tensor([[1.0, 0.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [9.0, 0.0, 0.0]])
    p = torch.softmax(logits.double(), 1)
    entropy = (-(p * p.log()).sum(1)).tolist()
    expected = sorted(range(5), key=lambda i: (round(entropy[i], 12), i))
    assert confidence_order(logits).tolist() == expected == [1, 4, 3, 0, 2]


def naive_zero(logits: np.ndarray, ratio: float):
    """An independent loop version of the official procedure (votes and prediction)."""
    V, C = logits.shape
    entropies = []
    for row in logits.astype(np.float64):
        p = np.exp(row - row.max())
        p /= p.sum()
        entropies.append(-sum(q * math.log(q) for q in p if q > 0))
    order = sorted(range(V), key=lambda i: (entropies[i], i))
    k = int(V * ratio)
    votes = [0.0] * C
    for i in order[:k]:
        best = [c for c in range(C) if logits[i, c] == logits[i].max()]
        for c in best:
            votes[c] += 1.0 / len(best)
    tied = [c for c in range(C) if votes[c] == max(votes)]
    if len(tied) == 1:
        return votes, tied[0]
    winner = None
    for i in order[k:]:
        first_best = next(c for c in range(C) if logits[i, c] == logits[i].max())
        if first_best in tied:
            winner = first_best
            break
    if winner is None:
        i = order[k] if k < V else order[0]
        winner = max(tied, key=lambda c: (logits[i, c], -c))
    votes[winner] += 1
    return votes, winner


@pytest.mark.parametrize('ratio', [0.1, 0.3])
def test_vote_matches_a_naive_loop_on_random_logits(ratio):
    g = torch.Generator().manual_seed(0)
    ties = 0
    for trial in range(150):
        # few classes and coarse logits: ties at the top occur (the noise keeps the entropies apart; shared row
        # maxima are checked by hand above)
        logits = torch.randint(0, 4, (20, 3), generator=g).float() * 2.0 + 0.01 * torch.randn(20, 3, generator=g)
        order = confidence_order(logits)
        k = int(20 * ratio)
        v = zero_vote(logits, order[:k], order[k:])
        votes, pred = naive_zero(logits.numpy(), ratio)
        assert v.votes.tolist() == pytest.approx(votes) and v.pred == pred, trial
        ties += len(v.tied) > 1
    assert ties > 10  # the break was exercised


def test_vote_logits_softmax_is_the_vote_share():
    logits = torch.tensor([[5.0, 0.0, 0.0, -2.0], [0.0, 6.0, 1.0, 0.0], [4.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
    selected = torch.tensor([0, 1, 2])
    v = zero_vote(logits, selected, torch.tensor([3]))
    z = vote_logits(v, logits[selected])
    share = torch.tensor([2.0, 1.0, 0.0, 0.0]) / 3
    q = torch.softmax(logits[selected].double(), 1).mean(0)
    expected = (share.double() + UNVOTED_MASS * q) / (1 + UNVOTED_MASS)
    assert torch.isfinite(z).all() and int(z.argmax()) == v.pred == 0
    assert torch.allclose(torch.softmax(z.double(), 0), expected, rtol=1e-6, atol=1e-12)
    assert z[2] > z[3]  # unvoted classes ranked by the kept views' mean probability (q_2 > q_3)


def test_vote_logits_stay_finite_where_probabilities_underflow():
    logits = torch.tensor([[0.0, 200.0, -200.0]] * 3)
    z = vote_logits(zero_vote(logits, torch.arange(3), torch.tensor([], dtype=torch.long)), logits)
    assert torch.isfinite(z).all() and int(z.argmax()) == 1


def tiny_model(backbone):
    return PromptedCLIP(backbone, TemplatePrompts(backbone, classnames=CLASSES))


def batch(n=3, v=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(views=torch.randn(n, v, 3, 32, 32, generator=g), label=torch.arange(n) % len(CLASSES),
                index=torch.arange(n) + 7, path=[f'p{i}' for i in range(n)])


def test_method_votes_the_models_view_logits(backbone):
    model = tiny_model(backbone)
    method = Zero(model, ratio=0.3)
    b = batch()
    results = method.process_batch(b)
    with torch.no_grad():
        text = model.text_features()
        for r, views in zip(results, b['views']):
            logits = model.logits(model.image_features(views), text)
            order = confidence_order(logits)
            v = zero_vote(logits, order[:3], order[3:])   # int(10 * 0.3) = 3 voting views
            assert torch.equal(r.logits, vote_logits(v, logits[order[:3]]))
            assert r.pred == v.pred and torch.equal(r.extra['votes'], v.votes)
    assert [r.index for r in results] == [7, 8, 9] and [r.path for r in results] == ['p0', 'p1', 'p2']
    stats = method.summary()
    assert stats['samples'] == 3 and stats['ratio'] == 0.3
    assert stats['ties_broken'] == sum(len(r.extra['tied']) > 1 for r in results)


class ForceLogits(Hook):
    """Replaces the views' logits after the forward (hooks may change the context)."""

    def __init__(self, logits):
        self.logits = logits

    def after_forward(self, runner, ctx):
        ctx.logits = self.logits.clone()


def test_the_method_breaks_a_tie_with_the_views_that_did_not_vote(backbone):
    # view i peaks at height 10 - i (confidence order = view order); views 0, 1, 2 vote 0, 1, 2: a three-way tie;
    # the remaining views vote 3 (not tied), then 2 -> class 2 (a break over all views would pick view 0's class 0)
    logits = rows(0, 1, 2, 3, 2, 1, 0, 0, 0, 0)
    logits *= (10 - torch.arange(10.0)).unsqueeze(1) / 5
    method = Zero(tiny_model(backbone), hooks=HookList([ForceLogits(logits)]))
    r = method.process_batch(batch(n=1))[0]
    assert r.pred == 2 and r.extra['tied'] == (0, 1, 2) and r.extra['votes'].tolist() == [1.0, 1.0, 2.0, 0.0]
    assert method.summary()['ties_broken'] == 1 and method.summary()['ties_fallback'] == 0


def test_predictions_do_not_depend_on_the_batch_size(backbone):
    b = batch(n=4)
    together = Zero(tiny_model(backbone)).process_batch(b)
    alone = Zero(tiny_model(backbone))
    one_by_one = [alone.process_batch({k: v[i:i + 1] for k, v in b.items()})[0] for i in range(4)]
    for x, y in zip(together, one_by_one):
        assert torch.equal(x.logits, y.logits)


def test_bad_settings_are_refused(backbone):
    model = tiny_model(backbone)
    for ratio in (0, 1.5, '0.3', True):
        with pytest.raises(ConfigError, match='tta.ratio'):
            Zero(model, ratio=ratio)
    with pytest.raises(ConfigError, match='0 views'):  # int(2 * 0.3) = 0: nothing would vote
        Zero(model).process_batch(batch(n=1, v=2))


def test_configs_are_the_official_recipe():
    for name in ('zero/vit_b16_imagenet_r.py', 'zero/vit_b16_cross_dataset.py', 'shapes/zero.py'):
        cfg = load_config(ROOT / 'configs' / name)
        assert cfg.tta.type == 'Zero' and cfg.tta.ratio == 0.3
        assert cfg.tta.views.type == 'TPTViews' and cfg.tta.views.n_views == 64 and cfg.tta.views.augmix is False
        assert cfg.model.prompt_learner.to_dict() == dict(type='TemplatePrompts', templates='single')
        assert tuple(cfg.tta.views.crop_scale) == ((0.3, 1.0) if name.startswith('shapes') else (0.08, 1.0))
