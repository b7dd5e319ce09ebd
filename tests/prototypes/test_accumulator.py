"""Streaming per-class statistics against a naive all-in-memory numpy computation."""
import numpy as np
import pytest
import torch

from promptsync.prototypes import ClassStatsAccumulator, combine_classes


def naive(x, labels, k):
    mean = np.zeros((k,) + x.shape[1:])
    var = np.zeros_like(mean)
    for c in range(k):
        sel = x[labels == c]
        if len(sel):
            mean[c], var[c] = sel.mean(0), sel.var(0)  # numpy var is biased by default
    return mean, var


@pytest.mark.parametrize('batch', [1, 3, 7, 50])
def test_streaming_equals_naive(batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4, 3)) * 3 + 10  # an offset mean stresses the numerics
    labels = rng.integers(0, 5, size=50)
    labels[labels == 4] = 3  # class 4 never appears
    acc = ClassStatsAccumulator(5, (4, 3))
    for s in range(0, 50, batch):
        acc.update(torch.from_numpy(x[s:s + batch]), torch.from_numpy(labels[s:s + batch]))
    mean, var = naive(x, labels, 5)
    assert np.allclose(acc.mean.numpy(), mean, atol=1e-10)
    assert np.allclose(acc.variance().numpy(), var, atol=1e-10)
    assert acc.count.tolist() == [int((labels == c).sum()) for c in range(5)]
    assert acc.variance()[4].abs().sum() == 0


def test_combine_classes_is_the_global_statistic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    labels = rng.integers(0, 3, size=40)
    acc = ClassStatsAccumulator(3, (6,))
    acc.update(torch.from_numpy(x), torch.from_numpy(labels))
    mean, var = combine_classes(acc.count, acc.mean, acc.variance())
    assert np.allclose(mean.numpy(), x.mean(0)) and np.allclose(var.numpy(), x.var(0))


def test_state_round_trip_and_errors():
    acc = ClassStatsAccumulator(2, (3,))
    acc.update(torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0]))
    other = ClassStatsAccumulator(2, (3,))
    other.load_state_dict({k: v.clone() for k, v in acc.state_dict().items()})
    assert torch.equal(other.mean, acc.mean) and torch.equal(other.m2, acc.m2)
    with pytest.raises(ValueError, match='do not match'):
        acc.update(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='labels must be'):
        acc.update(torch.randn(1, 3), torch.tensor([2]))
