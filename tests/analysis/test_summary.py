"""The report's pure computations against naive ones: text-shift sums over parts, distributions, flips."""
import math

import pytest
import torch

from promptsync.analysis.summary import distribution, flips
from promptsync.analysis.text_sums import TextSums


def test_sums_of_parts_give_the_naive_across_sample_variance(tmp_path):
    g = torch.Generator().manual_seed(0)
    T0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    # [N, C, E]: a shift common to the samples plus one that varies
    Ta = T0 + 0.1 * torch.randn(7, 5, 3, generator=g, dtype=torch.float64) + 0.3
    parts = [TextSums(), TextSums()]
    for n in range(7):
        parts[n % 2].add(n, Ta[n] - T0)
    parts[0].save(tmp_path / 'a.npz')
    sums = TextSums.combine([TextSums.load(tmp_path / 'a.npz'), parts[1]])
    got = sums.variance()
    T = Ta.double()
    assert got['samples'] == 7 and sorted(sums.indices) == list(range(7))
    assert got['variance'] == pytest.approx(float(T.var(0, unbiased=False).sum(1).mean()), rel=1e-9)
    assert got['mean_sq_shift'] == pytest.approx(float((T - T0.double()).pow(2).sum(2).mean()), rel=1e-9)
    with pytest.raises(ValueError, match='twice'):
        TextSums.combine([parts[0], parts[0]])
    assert TextSums().variance() is None


def test_distribution_by_hand():
    d = distribution([1.0, None, 3.0, 2.0, -1.0])
    assert d['n'] == 4 and d['undefined'] == 1 and d['mean'] == pytest.approx(1.25)
    assert d['std'] == pytest.approx(math.sqrt(((1 - 1.25) ** 2 + 1.75 ** 2 + 0.75 ** 2 + 2.25 ** 2) / 4))
    assert d['median'] == pytest.approx(1.5) and d['positive'] == pytest.approx(0.75)
    assert distribution([None, None]) is None


def test_flips_of_hand_made_lines():
    def line(label, p0, p1, failed=False):
        return dict(label=label, pred_initial=p0, pred=p1, correct_initial=p0 == label, correct=p1 == label,
                    **({'failed': True} if failed else {}))
    lines = [line(0, 0, 0), line(0, 0, 1), line(1, 0, 1), line(2, 0, 1), line(2, 1, 1), line(3, 3, -1, failed=True)]
    got = flips(lines)
    assert got == dict(n=6, changed=4, wrong_to_right=1, right_to_wrong=2, wrong_to_wrong=1, failed=1,
                       top1_initial=pytest.approx(100 * 3 / 6), top1=pytest.approx(100 * 2 / 6))
