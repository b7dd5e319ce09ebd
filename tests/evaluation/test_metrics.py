"""Metrics against naive computations; prediction records round-trip."""
import numpy as np
import pytest
import torch

from promptsync.evaluation import Accuracy, MeanPerClassAccuracy, PredictionTable, to_record
from promptsync.tta.context import SampleResult


def table_from_logits(logits, labels):
    return PredictionTable.from_records(to_record(SampleResult(i, int(y), lg)) for i, (lg, y) in
                                        enumerate(zip(logits, labels)))


def test_accuracy_matches_naive():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(50, 7))).float()
    labels = torch.from_numpy(rng.integers(0, 7, size=50))
    out = Accuracy(topk=(1, 5)).compute(table_from_logits(logits, labels))
    order = np.argsort(-logits.numpy(), axis=1)
    naive1 = np.mean(order[:, 0] == labels.numpy()) * 100
    naive5 = np.mean([y in row[:5] for row, y in zip(order, labels.numpy())]) * 100
    assert out['top1'] == pytest.approx(naive1) and out['top5'] == pytest.approx(naive5)


def test_top5_with_three_classes_is_top3():
    logits = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    out = Accuracy(topk=(1, 5)).compute(table_from_logits(logits, torch.tensor([2, 2])))
    assert out == {'top1': 50.0, 'top5': 100.0}


def test_mean_per_class_accuracy_matches_naive():
    labels = torch.tensor([0, 0, 0, 0, 1, 3, 3])
    preds = torch.tensor([0, 0, 0, 1, 1, 0, 3])
    logits = torch.nn.functional.one_hot(preds, 4).float()
    out = MeanPerClassAccuracy().compute(table_from_logits(logits, labels))
    assert out['mean_class_top1'] == pytest.approx(100 * np.mean([3 / 4, 1.0, 1 / 2]))


def test_record_content():
    rec = to_record(SampleResult(7, 1, torch.tensor([0.0, 2.0, 1.0]), path='p.png', loss_terms={'a': 0.5}))
    assert rec['pred'] == 1 and rec['correct'] and rec['topk'] == [1, 2, 0] and rec['loss'] == {'a': 0.5}
    assert rec['confidence'] == pytest.approx(float(torch.softmax(torch.tensor([0.0, 2.0, 1.0]), 0)[1]), abs=1e-6)


def test_too_large_topk_is_refused():
    with pytest.raises(ValueError, match='top-k above 5'):
        Accuracy(topk=(1, 10))
