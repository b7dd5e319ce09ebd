"""The reliability diagram: its bins are ExpectedCalibrationError's, the bars show the hand-computed accuracies."""
import numpy as np
import pytest
import torch

from promptsync.evaluation import PredictionTable
from promptsync.evaluation.calibration import ExpectedCalibrationError
from promptsync.visualization.figure import PlotInputError
from promptsync.visualization.reliability import reliability_bins, reliability_diagram, reliability_figure

from .helpers import assert_png, bars

# bins=5: (0, .2] holds 0.1, 0.15, the edge 0.2 and a confidence of 0; 0.55 -> (.4, .6]; 0.9 and 1.0 -> (.8, 1]
CONF = [0.1, 0.15, 0.2, 0.0, 0.55, 0.9, 1.0, float('nan')]
CORRECT = [1, 0, 1, 0, 1, 1, 0, 0]


def test_bins_by_hand():
    binned = reliability_bins(CONF, CORRECT, bins=5)
    assert binned.count.tolist() == [4, 0, 1, 0, 2] and binned.total == 7 and binned.excluded == 1
    assert binned.accuracy[[0, 2, 4]] == pytest.approx([0.5, 1.0, 0.5])
    assert binned.confidence[[0, 2, 4]] == pytest.approx([0.1125, 0.55, 0.95])
    assert np.isnan(binned.accuracy[[1, 3]]).all()
    assert binned.ece == pytest.approx(100 * (1.55 + 0.45 + 0.9) / 7)
    assert binned.edges == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def _table(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(n, generator=g)
    conf[:16] = torch.arange(16) / 15  # every bin edge, 0 and 1 included (float32, as a run stores them)
    conf[16:20] = float('nan')  # failed samples
    labels = torch.randint(0, 5, (n,), generator=g)
    pred = torch.where(torch.rand(n, generator=g) < conf.nan_to_num(0), labels, (labels + 1) % 5)
    pred[16:20] = -1
    return PredictionTable(labels, pred[:, None], conf, 5)


@pytest.mark.parametrize('bins', [15, 10, 1])
def test_bins_equal_the_ece_metric_and_a_naive_binning(bins):
    table = _table()
    correct = table.topk[:, 0] == table.labels
    binned = reliability_bins(table.confidence, correct, bins)
    metric = ExpectedCalibrationError(bins).compute(table)
    assert binned.ece == pytest.approx(metric['ece'], abs=1e-10) and binned.excluded == metric['ece_excluded'] == 4
    # naive: bin b holds (b/B, (b+1)/B], a confidence of 0 in the first (np.searchsorted on the same float64 values)
    conf = table.confidence.double().numpy()
    ok = np.isfinite(conf)
    edges = np.arange(bins + 1, dtype=np.float64) / bins
    naive = np.clip(np.searchsorted(edges, conf[ok], side='left') - 1, 0, bins - 1)
    assert binned.count.tolist() == np.bincount(naive, minlength=bins).tolist()
    hits = correct.numpy()[ok]
    for b in range(bins):
        if binned.count[b]:
            assert binned.accuracy[b] == pytest.approx(hits[naive == b].mean())
            assert binned.confidence[b] == pytest.approx(conf[ok][naive == b].mean())


def test_numpy_torch_and_lists_give_the_same_bins():
    conf = np.array([0.3, 0.7, 0.95, 0.5], dtype=np.float32)
    hit = np.array([True, False, True, True])
    a = reliability_bins(conf, hit)
    b = reliability_bins(torch.from_numpy(conf), torch.from_numpy(hit))
    c = reliability_bins(conf.tolist(), hit.tolist())
    assert a.count.tolist() == b.count.tolist() == c.count.tolist() and a.ece == b.ece == pytest.approx(c.ece)


def test_the_figure_draws_the_bins(tmp_path):
    binned = reliability_bins(CONF, CORRECT, bins=5)
    figure = reliability_figure(binned, title='hand')
    top, bottom = figure.axes
    drawn = bars(top, 'accuracy')
    assert [p.get_height() for p in drawn] == pytest.approx([0.5, 1.0, 0.5])
    assert [p.get_x() for p in drawn] == pytest.approx([0.0, 0.4, 0.8])
    assert all(p.get_width() == pytest.approx(0.2) for p in drawn)
    gaps = bars(top, 'gap to mean confidence')  # from the accuracy to the mean confidence of the bin
    assert [p.get_y() for p in gaps] == pytest.approx([0.5, 1.0, 0.5])
    assert [p.get_y() + p.get_height() for p in gaps] == pytest.approx([0.1125, 0.55, 0.95])
    assert [p.get_height() for p in bars(bottom, 'samples')] == [4, 0, 1, 0, 2]
    assert f'ECE {100 * 2.9 / 7:.2f}%' in top.get_title() and '1 failed left out' in top.get_title()
    path = reliability_diagram(np.array(CONF), np.array(CORRECT, dtype=bool), 5, path=tmp_path / 'r.png')
    assert path == tmp_path / 'r.png'
    assert_png(path)


@pytest.mark.parametrize('conf, correct, match', [
    ([0.2, 0.5], [1], '2 confidences but 1 correct'),
    ([1.5, 0.5], [1, 0], r'\[0, 1\]'),
    ([0.5, 0.4], [2, 0], 'True/False'),
    ([float('nan')], [0], 'no sample has a finite confidence'),
    (np.zeros((2, 2)), [0, 1], '1-D'),
    (torch.tensor([1, 0]), [1, 0], 'floats'),
])
def test_bad_inputs_are_refused(conf, correct, match):
    with pytest.raises(PlotInputError, match=match):
        reliability_bins(conf, correct)
