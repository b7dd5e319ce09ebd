"""Training curves: the panels plot the logged epochs; a training run writes train_curves.png when it finishes, and a
failing plot never costs the checkpoint."""
import json
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config

import promptsync.engine.loops.train_loop as train_loop
from promptsync import engine
from promptsync.visualization.figure import PlotInputError
from promptsync.visualization.training_curves import training_curves, training_figure

from ..conftest import TINY
from .helpers import assert_png

LOG = [dict(epoch=1, loss=2.0, train_acc=30.0, val_acc=25.0, lr=1e-5, images=8),
       dict(epoch=2, loss=1.5, train_acc=50.0, val_acc=45.0, lr=2e-3, images=8),
       dict(epoch=3, loss=1.1, train_acc=70.0, val_acc=40.0, lr=1e-3, images=8)]


def _lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines}


def test_the_panels_plot_the_logged_epochs(tmp_path):
    figure, series = training_figure(LOG, selected_epoch=2)
    loss_ax, acc_ax, lr_ax = figure.axes
    assert _lines(loss_ax)['loss'] == ([1, 2, 3], [2.0, 1.5, 1.1])
    acc = _lines(acc_ax)
    assert acc['train_acc'][1] == [30.0, 50.0, 70.0] and acc['val_acc'][1] == [25.0, 45.0, 40.0]
    assert _lines(lr_ax)['lr'][1] == pytest.approx([1e-5, 2e-3, 1e-3]) and lr_ax.get_yscale() == 'log'
    assert all(_lines(ax)['selected epoch 2'][0] == [2, 2] for ax in figure.axes)
    path = tmp_path / 'log.jsonl'
    path.write_text(''.join(json.dumps(r) + '\n' for r in LOG) + '{"epoch": 4, "lo')  # torn last line: dropped
    assert training_curves(path, path=tmp_path / 'c.png') == tmp_path / 'c.png'
    assert_png(tmp_path / 'c.png')


def test_without_validation_only_the_training_accuracy_is_drawn():
    log = [dict(r, val_acc=None, lr=0.002) for r in LOG]
    figure, series = training_figure(log)
    assert np.isnan(series['val_acc']).all()
    assert set(_lines(figure.axes[1])) == {'train_acc'} and figure.axes[2].get_yscale() == 'linear'


def test_a_log_that_is_not_a_training_log_is_refused():
    with pytest.raises(PlotInputError, match='no epoch yet'):
        training_figure([])
    with pytest.raises(PlotInputError, match=r"\['loss'\]"):
        training_figure([dict(epoch=1)])


def _cfg(root, work_dir, epochs=2):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='CoOp', n_ctx=2)),
        train_data=dict(dataset=dict(type='ImageFolder', root=str(root)), num_shots=2, batch_size=4, num_workers=0),
        val_data=dict(dataset=dict(type='ImageFolder', root=str(root)), max_samples=None),
        trainer=dict(type='PromptTrainer', epochs=epochs, optimizer=dict(type='SGD', lr=0.01), warmup_epochs=0,
                     log_interval=0),
        seed=0, device='cpu', work_dir=str(work_dir), log_level='WARNING',
        default_hooks=dict(progress=dict(type='ProgressBarHook', disable=True))))


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_training_run_writes_its_curves_and_a_failing_plot_keeps_the_checkpoint(fake_folder, tmp_path, monkeypatch,
                                                                                   warnings_logged, one_thread):
    result = engine.fit_prompts(_cfg(fake_folder, tmp_path / 'run'))
    assert_png(tmp_path / 'run/train_curves.png', min_side=250)
    logged = [json.loads(x) for x in (tmp_path / 'run/train_log.jsonl').read_text().splitlines()]
    _, series = training_figure(logged)
    assert series['loss'].tolist() == [h['loss'] for h in result.summary['history']]

    def broken(*args, **kwargs):
        raise RuntimeError('no curves today')
    monkeypatch.setattr(train_loop, 'training_curves', broken)
    result = engine.fit_prompts(_cfg(fake_folder, tmp_path / 'broken'))
    assert result.checkpoint.is_file() and (tmp_path / 'broken/train_log.jsonl').is_file()
    assert json.loads((tmp_path / 'broken/run.json').read_text())['status'] == 'done'
    assert not (tmp_path / 'broken/train_curves.png').exists()
    assert any('no curves today' in r.getMessage() for r in warnings_logged)
    assert not math.isnan(result.summary['history'][-1]['loss'])
