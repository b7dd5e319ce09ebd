"""tools/test.py end to end on a generated ImageFolder with the tiny model: outputs, resume, determinism."""
import json

import pytest

from promptsync.evaluation import read_records

from .helpers import ROOT, load_tool, options

TPT = str(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')
ZS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')
ENS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r_ensemble.py')


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


def run(test_tool, config, work_dir, overrides, *extra):
    argv = [config, '--work-dir', str(work_dir), *extra, *options(overrides), 'default_hooks.progress.disable=True']
    return test_tool.main(argv)


def small_tpt(overrides):
    return dict(overrides, **{'tta.views.n_views': 8, 'tta.selection.ratio': 0.25})


def test_tpt_config_end_to_end(test_tool, tmp_path, tiny_overrides, capsys):
    out = run(test_tool, TPT, tmp_path, small_tpt(tiny_overrides))
    printed = capsys.readouterr().out
    assert 'tpt/vit_b16_imagenet_r' in printed and 'top1' in printed and 'EpisodicTTA' in printed
    for name in ('config.py', 'log.txt', 'run.json', 'predictions.jsonl', 'metrics.json', 'results.md',
                 'reliability.png'):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / 'reliability.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    records = read_records(tmp_path / 'predictions.jsonl')
    assert len(records) == 12 and sorted(r['index'] for r in records) == list(range(12))
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    top1 = 100.0 * sum(r['correct'] for r in records) / len(records)
    top5 = 100.0 * sum(r['label'] in r['topk'][:5] for r in records) / len(records)
    assert metrics['metrics']['top1'] == pytest.approx(top1) and metrics['metrics']['top5'] == pytest.approx(top5)
    assert metrics['method_stats']['resets'] == 12 and out['num_samples'] == 12
    assert all('MarginalEntropyLoss' in r['loss'] for r in records)
    dumped = (tmp_path / 'config.py').read_text()
    assert "model_name='ps-tiny-vit'" in dumped and 'n_views=8' in dumped


def test_zero_shot_configs_end_to_end(test_tool, tmp_path, tiny_overrides):
    single = run(test_tool, ZS, tmp_path / 'zs', tiny_overrides)
    ens = run(test_tool, ENS, tmp_path / 'ens', tiny_overrides)
    assert single['num_samples'] == ens['num_samples'] == 12
    assert single['method'] == 'ZeroShot' and ens['prompt_learner'] == 'TemplatePrompts'
    a = read_records(tmp_path / 'zs' / 'predictions.jsonl')
    b = read_records(tmp_path / 'ens' / 'predictions.jsonl')
    assert [r['confidence'] for r in a] != [r['confidence'] for r in b]  # the templates matter


def test_same_seed_same_predictions_and_shards_compose(test_tool, tmp_path, tiny_overrides):
    ov = small_tpt(tiny_overrides)
    run(test_tool, TPT, tmp_path / 'a', ov)
    run(test_tool, TPT, tmp_path / 'b', dict(ov, **{'data.batch_size': 3}))
    for shard in ('0/2', '1/2'):  # two separate jobs; the last to finish merges them
        run(test_tool, TPT, tmp_path / 'shards', ov, '--shard', shard, '--no-resume')
    full = read_records(tmp_path / 'a' / 'predictions.jsonl')
    assert full == read_records(tmp_path / 'b' / 'predictions.jsonl')
    merged = read_records(tmp_path / 'shards' / 'predictions.jsonl')
    assert sorted(merged, key=lambda r: r['index']) == full
    other_seed = run(test_tool, TPT, tmp_path / 'c', ov, '--seed', '1')
    assert other_seed['seed'] == 1
    assert read_records(tmp_path / 'c' / 'predictions.jsonl') != full


def test_resume_skips_done_samples_and_refuses_another_config(test_tool, tmp_path, tiny_overrides):
    ov = small_tpt(tiny_overrides)
    part = run(test_tool, TPT, tmp_path / 'r', ov, '--max-samples', '5')
    assert part['num_samples'] == 5
    full = run(test_tool, TPT, tmp_path / 'r', ov)
    assert full['num_resumed'] == 5 and full['num_new'] == 7 and full['num_samples'] == 12
    fresh = run(test_tool, TPT, tmp_path / 'fresh', ov)
    by_index = lambda p: sorted(read_records(p), key=lambda r: r['index'])  # noqa: E731
    assert by_index(tmp_path / 'r' / 'predictions.jsonl') == by_index(tmp_path / 'fresh' / 'predictions.jsonl')
    assert full['metrics'] == fresh['metrics']
    with pytest.raises(RuntimeError, match='different config'):
        run(test_tool, TPT, tmp_path / 'r', dict(ov, **{'tta.optimizer.lr': 0.5}))
    again = run(test_tool, TPT, tmp_path / 'r', dict(ov, **{'tta.optimizer.lr': 0.5}), '--no-resume')
    assert again['num_resumed'] == 0 and again['num_samples'] == 12


def test_interrupted_predictions_file_is_resumed(test_tool, tmp_path, tiny_overrides):
    ov = small_tpt(tiny_overrides)
    run(test_tool, TPT, tmp_path, ov)
    path = tmp_path / 'predictions.jsonl'
    lines = path.read_text().splitlines()
    path.write_text('\n'.join(lines[:4]) + '\n' + lines[4][:10])  # torn write
    out = run(test_tool, TPT, tmp_path, ov)
    assert out['num_resumed'] == 4 and out['num_new'] == 8 and out['num_samples'] == 12


def test_calibration_and_collapse_metrics_of_a_run(test_tool, tmp_path, tiny_overrides):
    """ECE and the collapse measures in metrics.json equal a recomputation from the run's own prediction records, and
    the label space size comes from the run (4 classes)."""
    from promptsync.evaluation import ExpectedCalibrationError, PredictionCollapse, PredictionTable
    ov = dict(small_tpt(tiny_overrides))
    argv = [TPT, '--work-dir', str(tmp_path), *options(ov), 'default_hooks.progress.disable=True',
            'metrics=[dict(type=Accuracy, topk=(1, 5)), dict(type=ExpectedCalibrationError), '
            'dict(type=PredictionCollapse)]']
    test_tool.main(argv)
    metrics = json.loads((tmp_path / 'metrics.json').read_text())['metrics']
    table = PredictionTable.from_records(read_records(tmp_path / 'predictions.jsonl'), 4)
    assert metrics['ece'] == pytest.approx(ExpectedCalibrationError().compute(table)['ece'])
    expected = PredictionCollapse().compute(table)
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert metrics['label_entropy'] == pytest.approx(1.0)  # 3 images of each of the 4 classes
