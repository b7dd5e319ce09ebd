"""ECE and the collapse measures against hand computations."""
import math

import pytest
import torch

from promptsync.evaluation import ExpectedCalibrationError, PredictionCollapse, PredictionTable


def table(labels, preds, conf, num_classes=None):
    topk = torch.tensor([[p, -1] for p in preds])
    return PredictionTable(torch.tensor(labels), topk, torch.tensor(conf, dtype=torch.float), num_classes)


def test_ece_by_hand():
    # 2 bins: (0, 0.5] holds 0.2 (wrong) and 0.5 (right): acc 0.5, conf 0.35 -> gap 0.15 x 2/5
    #         (0.5, 1] holds 0.6 (right), 0.9 (wrong), 1.0 (right): acc 2/3, conf 2.5/3 -> gap 1/6 x 3/5
    t = table([0, 1, 2, 3, 4], [0, 9, 2, 9, 4], [0.5, 0.2, 0.6, 0.9, 1.0])
    out = ExpectedCalibrationError(bins=2).compute(t)
    assert out['ece'] == pytest.approx(100 * (0.15 * 2 / 5 + (2.5 / 3 - 2 / 3) * 3 / 5))
    assert out['ece_excluded'] == 0
    # one bin: |accuracy - mean confidence|
    assert ExpectedCalibrationError(bins=1).compute(t)['ece'] == pytest.approx(100 * abs(3 / 5 - 3.2 / 5))


def test_ece_with_15_bins_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(200, generator=g)
    labels = torch.randint(0, 5, (200,), generator=g)
    preds = torch.where(torch.rand(200, generator=g) < conf, labels, (labels + 1) % 5)
    t = table(labels.tolist(), preds.tolist(), conf.tolist())
    edges = [i / 15 for i in range(16)]
    naive = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        members = [(c, p == y) for c, p, y in zip(t.confidence.tolist(), preds.tolist(), labels.tolist())
                   if lo < c <= hi or (lo == 0 and c == 0)]
        if members:
            acc = sum(ok for _, ok in members) / len(members)
            mean_conf = sum(c for c, _ in members) / len(members)
            naive += len(members) / 200 * abs(acc - mean_conf)
    assert ExpectedCalibrationError().compute(t)['ece'] == pytest.approx(100 * naive, rel=1e-6)


def test_failed_samples_are_left_out_of_the_ece_and_counted():
    t = table([0, 1], [0, -1], [0.8, float('nan')])
    assert ExpectedCalibrationError().compute(t) == {'ece': pytest.approx(20.0), 'ece_excluded': 1}


def test_collapse_by_hand():
    # 4 classes, 4 samples: predictions 0, 0, 0, 2 -> shares 3/4, 1/4; labels 0, 1, 2, 3 -> uniform
    t = table([0, 1, 2, 3], [0, 0, 0, 2], [0.9] * 4, num_classes=4)
    out = PredictionCollapse().compute(t)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    assert out['pred_entropy'] == pytest.approx(h) and out['pred_max_share'] == pytest.approx(75.0)
    assert out['label_entropy'] == pytest.approx(1.0) and out['label_max_share'] == pytest.approx(25.0)
    collapsed = PredictionCollapse().compute(table([0, 1, 2, 3], [1, 1, 1, 1], [0.9] * 4, num_classes=4))
    assert collapsed['pred_entropy'] == pytest.approx(0.0) and collapsed['pred_max_share'] == pytest.approx(100.0)


def test_collapse_needs_the_number_of_classes():
    with pytest.raises(ValueError, match='number of classes'):
        PredictionCollapse().compute(table([0], [0], [0.9]))
    assert PredictionCollapse(num_classes=2).compute(table([0], [0], [0.9]))['pred_max_share'] == 100.0
