"""MTA: bandwidths, kernels, the inlierness and mode steps by hand, the whole alternation against a naive loop, and
the method on the tiny model (batch-size independent)."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import TemplatePrompts
from promptsync.tta.methods import MTA
from promptsync.tta.methods.mean_shift import (gaussian_density, inlierness_step, knn_bandwidth, mode_step,
                                               mta_mode, view_affinity)
from promptsync.utils.config import load_config

from ..conftest import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def points(v=12, e=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(e, generator=g) + 0.7 * torch.randn(v, e, generator=g), dim=-1).double()
    logits = 10 * x @ F.normalize(torch.randn(c, e, generator=g), dim=-1).double().t()
    return x, logits


def dist(a, b):
    return math.sqrt(sum((float(p) - float(q)) ** 2 for p, q in zip(a, b)))


def naive_bandwidth(x, ratio=0.3):
    n = len(x)
    k = int(ratio * (n - 1))
    out = []
    for i in range(n):
        d = sorted(dist(x[i], x[j]) for j in range(n) if j != i)[:k]
        out.append(math.sqrt(0.5 * sum(v * v for v in d) / k))
    return out


def naive_mta(x, logits, lambda_y=0.2, lambda_q=4.0, max_iter=5, tol=1e-6):
    """An independent loop version of the official solve_mta (lists and math only)."""
    n, e = x.shape
    h = naive_bandwidth(x)
    probs = []
    for row in logits.tolist():
        m = max(row)
        ex = [math.exp(v - m) for v in row]
        probs.append([v / sum(ex) for v in ex])
    A = [[sum(p * q for p, q in zip(probs[i], probs[j])) for j in range(n)] for i in range(n)]
    X = x.tolist()
    y, mode = [1.0 / n] * n, list(X[0])
    steps = [0, 0]

    def kernel(m):
        return [math.exp(-dist(X[i], m) ** 2 / (2 * h[i] ** 2)) for i in range(n)]

    for _ in range(max_iter):
        K = kernel(mode)
        for _ in range(max_iter):
            s = [(K[i] + lambda_q * sum(A[i][j] * y[j] for j in range(n))) / lambda_y for i in range(n)]
            top = max(s)
            ex = [math.exp(v - top) for v in s]
            new = [v / sum(ex) for v in ex]
            moved = math.sqrt(sum((a - b) ** 2 for a, b in zip(new, y)))
            y = new
            steps[0] += 1
            if moved < tol:
                break
        for _ in range(max_iter):
            w = [k * yi for k, yi in zip(kernel(mode), y)]
            m = [sum(w[i] * X[i][d] for i in range(n)) / sum(w) for d in range(e)]
            norm = math.sqrt(sum(v * v for v in m))
            m = [v / norm for v in m]
            moved = dist(m, mode)
            mode = m
            steps[1] += 1
            if moved < tol:
                break
    return torch.tensor(mode, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), steps


def test_bandwidth_matches_the_nearest_neighbour_definition():
    x, _ = points()
    assert torch.allclose(knn_bandwidth(x), torch.tensor(naive_bandwidth(x), dtype=x.dtype), atol=1e-12)


def test_kernel_affinity_and_inlierness_step_by_hand():
    x, logits = points(v=5)
    h = knn_bandwidth(x)
    mode = F.normalize(x[:3].mean(0), dim=0)
    K = gaussian_density(mode, h, x)
    for i in range(5):
        assert float(K[i]) == pytest.approx(math.exp(-dist(x[i], mode) ** 2 / (2 * float(h[i]) ** 2)), rel=1e-12)
    P = torch.softmax(logits, 1)
    A = view_affinity(logits)
    assert float(A[1, 3]) == pytest.approx(float((P[1] * P[3]).sum()), rel=1e-6)
    y = torch.tensor([0.1, 0.3, 0.2, 0.15, 0.25], dtype=x.dtype)
    s = [(float(K[i]) + 4.0 * sum(float(A[i, j]) * float(y[j]) for j in range(5))) / 0.2 for i in range(5)]
    expected = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
    assert inlierness_step(K, A, y, 0.2, 4.0).tolist() == pytest.approx(expected, rel=1e-5)


def test_mode_step_is_the_weighted_kernel_mean_renormalised():
    x, _ = points(v=6)
    h = knn_bandwidth(x)
    y = torch.linspace(0.05, 0.3, 6, dtype=x.dtype)
    K = gaussian_density(x[0], h, x)
    m = sum(float(K[i] * y[i]) * x[i] for i in range(6)) / float((K * y).sum())
    assert torch.allclose(mode_step(x[0], y, h, x), m / m.norm(), atol=1e-12)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_mta_mode_matches_a_naive_loop(seed):
    x, logits = points(seed=seed)
    mode, y, steps = naive_mta(x, logits)
    exact = mta_mode(x, logits)                   # float64 in, float64 throughout
    assert torch.allclose(exact.mode, mode, atol=1e-12) and torch.allclose(exact.inlierness, y, atol=1e-12)
    assert [exact.inlierness_steps, exact.mode_steps] == steps and 5 < sum(steps) < 50
    out = mta_mode(x.float(), logits.float())     # the method's precision
    assert torch.allclose(out.mode.double(), mode, atol=1e-5)
    assert torch.allclose(out.inlierness.double(), y, atol=1e-5)
    assert float(out.mode.norm()) == pytest.approx(1.0, abs=1e-6)


def test_identical_views_give_a_finite_mode():
    x, logits = points(v=8)
    x[1:7] = x[0]       # 7 identical views: the 2 nearest neighbours of each are at distance 0, bandwidth 0
    logits[1:7] = logits[0]
    out = mta_mode(x.float(), logits.float())
    assert torch.isfinite(out.mode).all() and torch.isfinite(out.inlierness).all()


def tiny_model(backbone):
    return PromptedCLIP(backbone, TemplatePrompts(backbone, classnames=CLASSES))


def batch(n=3, v=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(views=torch.randn(n, v, 3, 32, 32, generator=g), label=torch.arange(n) % len(CLASSES),
                index=torch.arange(n) + 3, path=[f'p{i}' for i in range(n)])


def test_method_predicts_the_logits_of_the_mode(backbone):
    model = tiny_model(backbone)
    method = MTA(model)
    b = batch()
    results = method.process_batch(b)
    steps = 0
    with torch.no_grad():
        text = model.text_features()
        scale = float(backbone.logit_scale())
        for r, views in zip(results, b['views']):
            feats = model.image_features(views)
            out = mta_mode(feats, model.logits(feats, text))
            steps += out.inlierness_steps
            assert torch.allclose(r.logits, scale * out.mode @ text.t(), atol=1e-5)
    stats = method.summary()
    assert stats['samples'] == 3 and stats['outer_iterations'] == 15 and stats['inlierness_steps'] == steps
    assert [r.index for r in results] == [3, 4, 5]


def test_predictions_do_not_depend_on_the_batch_size(backbone):
    b = batch(n=4)
    together = MTA(tiny_model(backbone)).process_batch(b)
    alone = MTA(tiny_model(backbone))
    one_by_one = [alone.process_batch({k: v[i:i + 1] for k, v in b.items()})[0] for i in range(4)]
    for x, y in zip(together, one_by_one):
        assert torch.equal(x.logits, y.logits)


def test_bad_settings_are_refused(backbone):
    model = tiny_model(backbone)
    for key, value in (('lambda_y', 0), ('lambda_q', -1.0), ('max_iter', 2.5), ('knn_ratio', 1.5), ('tol', '1e-6')):
        with pytest.raises(ConfigError, match=f'tta.{key}'):
            MTA(model, **{key: value})
    with pytest.raises(ConfigError, match='0 neighbours'):  # int(0.3 * 3) = 0 neighbours: no bandwidth
        MTA(model).process_batch(batch(n=1, v=4))


def test_configs_are_the_official_recipe():
    for name in ('mta/vit_b16_imagenet_r.py', 'mta/vit_b16_cross_dataset.py', 'shapes/mta.py'):
        cfg = load_config(ROOT / 'configs' / name)
        t = cfg.tta
        assert t.type == 'MTA' and (t.lambda_y, t.lambda_q, t.max_iter, t.tol, t.knn_ratio) == (0.2, 4.0, 5, 1e-6, 0.3)
        assert t.views.type == 'TPTViews' and t.views.n_views == 64 and t.views.augmix is False
        assert cfg.model.prompt_learner.to_dict() == dict(type='TemplatePrompts', templates='single')
        assert tuple(t.views.crop_scale) == ((0.3, 1.0) if name.startswith('shapes') else (0.08, 1.0))
