"""tools/plot.py: recognises each run output by its contents, writes the figure next to it, prints its path."""
import json
import shutil

import pytest

import promptsync.visualization.plot_files as plot_files
from promptsync.evaluation import PredictionTable
from promptsync.evaluation.calibration import ExpectedCalibrationError
from promptsync.visualization.reliability import reliability_bins

from ..tools.helpers import load_tool
from .helpers import assert_png
from .test_ablation_plot import GRID_2D, make_state
from .test_suite_bars import suite_out
from .test_training_curves import LOG

RECORDS = [dict(index=0, label=1, pred=1, correct=True, topk=[1, 0], confidence=0.9, path='a.png'),
           dict(index=1, label=0, pred=1, correct=False, topk=[1, 0], confidence=0.6, path='b.png'),
           dict(index=2, label=0, pred=0, correct=True, topk=[0, 1], confidence=0.55, path='c.png'),
           dict(index=3, label=1, pred=-1, correct=False, topk=[], confidence=None, path='d.png', nonfinite=True)]
FIGURES = {'benchmark.json': 'benchmark.png', 'ablation.json': 'ablation.png', 'train_log.jsonl': 'train_curves.png',
           'predictions.jsonl': 'reliability.png'}


def cli(tool, *argv):
    """The exit code of the command line (errors become a message, as from a shell)."""
    return tool.run_cli(tool.main, list(argv))


@pytest.fixture(scope='module')
def tool():
    return load_tool('plot')


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / 'benchmark.json').write_text(json.dumps(suite_out()))
    (tmp_path / 'ablation.json').write_text(json.dumps(make_state(GRID_2D), default=repr))
    (tmp_path / 'train_log.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in LOG))
    (tmp_path / 'run.json').write_text(json.dumps(dict(status='done', selected_epoch=2)))
    (tmp_path / 'predictions.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in RECORDS))
    return tmp_path


def test_a_folder_gets_a_figure_for_each_output(tool, run_dir, capsys):
    assert tool.main([str(run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(run_dir / figure) for figure in FIGURES.values()]
    for path in printed:
        assert_png(path, min_side=250)


@pytest.mark.parametrize('name', list(FIGURES))
def test_each_file_kind_by_its_contents_whatever_its_name(tool, run_dir, capsys, name):
    assert tool.main([str(run_dir / name)]) == 0
    assert capsys.readouterr().out.split() == [str(run_dir / FIGURES[name])]
    copy = run_dir / 'old' / f'copy_{name}.txt'
    copy.parent.mkdir()
    shutil.copy(run_dir / name, copy)
    assert tool.main([str(copy)]) == 0
    written = run_dir / 'old' / f'{copy.name}.{FIGURES[name]}'  # never overwrites the run's own figure
    assert capsys.readouterr().out.split() == [str(written)]
    assert_png(written, min_side=250)


def test_the_reliability_diagram_of_predictions_is_the_ece_metric(tool, run_dir, monkeypatch, capsys):
    seen = {}
    real = plot_files.reliability_diagram

    def spy(confidences, correct, bins, **kwargs):
        seen['bins'] = reliability_bins(confidences, correct, bins)
        return real(confidences, correct, bins, **kwargs)
    monkeypatch.setattr(plot_files, 'reliability_diagram', spy)
    assert tool.main([str(run_dir / 'predictions.jsonl'), '--bins', '10']) == 0
    metric = ExpectedCalibrationError(10).compute(PredictionTable.from_records(RECORDS))
    assert seen['bins'].ece == pytest.approx(metric['ece'], abs=1e-10) and seen['bins'].excluded == 1
    assert seen['bins'].count.sum() == 3 and seen['bins'].accuracy[5] == 1.0  # 0.55 -> (0.5, 0.6]: correct


def test_metrics_choose_the_panels(tool, run_dir, capsys):
    assert tool.main([str(run_dir / 'benchmark.json'), '--metrics', 'ece']) == 0
    assert tool.main([str(run_dir), '--metrics', 'top1']) == 0  # a folder: only its suite / ablation take them
    assert cli(tool, str(run_dir / 'benchmark.json'), '--metrics', 'top5') == 1
    assert 'no run measured the metrics' in capsys.readouterr().err


def test_what_is_not_a_run_output_is_an_error(tool, tmp_path, capsys):
    (tmp_path / 'notes.md').write_text('# not a run\n')
    assert cli(tool, str(tmp_path / 'notes.md')) == 1
    assert 'none of the files a figure is drawn from' in capsys.readouterr().err
    assert cli(tool, str(tmp_path)) == 1
    assert 'holds none of benchmark.json' in capsys.readouterr().err
    assert cli(tool, str(tmp_path / 'missing.json')) == 1
    assert 'does not exist' in capsys.readouterr().err
    (tmp_path / 'predictions.jsonl').write_text(json.dumps(RECORDS[0]) + '\n')
    assert cli(tool, str(tmp_path / 'predictions.jsonl'), '--metrics', 'top1') == 1
    assert '--metrics applies to suites and ablations' in capsys.readouterr().err
