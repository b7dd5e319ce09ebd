"""The recorder inside tools/test.py runs (single process, two --shard jobs, an interrupted and resumed run) and the
report of tools/analyze.py over two run dirs; a run dir without the recording is a clear error."""
import json
import shutil

import pytest

from promptsync.analysis import layout
from promptsync.analysis.reading import load_run
from promptsync.errors import ConfigError, ProvenanceError, ResourceError
from promptsync.evaluation import read_records

from ..tools.helpers import ROOT, load_tool, options

TPT = str(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')
MAPLE = str(ROOT / 'configs/maple_tpt/vit_b16_imagenet_r.py')
ZS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')
RECORD = "custom_hooks=[dict(type='AdaptationRecorder')]"
N = 6


@pytest.fixture(scope='module')
def tools():
    return load_tool('test'), load_tool('analyze')


@pytest.fixture(scope='module')
def overrides(fake_folder):
    """The tiny offline run of tests/conftest.py ``tiny_overrides`` (module scope), few views, initial prompts."""
    return {'model.backbone.model_name': 'ps-tiny-vit', 'model.backbone.pretrained': None,
            'model.backbone.precision': 'fp32', 'data.dataset.type': 'ImageFolder',
            'data.dataset.root': str(fake_folder), 'data.num_workers': 0, 'device': 'cpu',
            'default_hooks.progress.disable': True, 'tta.views.n_views': 4, 'tta.selection.ratio': 0.25,
            'tta.optimizer.lr': 0.5, 'data.max_samples': N}


def run(tools, config, work_dir, overrides, *extra, record=True):
    return tools[0].main([config, '--work-dir', str(work_dir), *extra, *options(overrides),
                          *([RECORD] if record else [])])


@pytest.fixture(scope='module')
def run_dirs(tools, overrides, tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    run(tools, TPT, root / 'tpt', overrides)
    run(tools, MAPLE, root / 'maple', dict(overrides, **{'model.prompt_checkpoint': None}))
    return root


def _by_hand(run_dir):
    preds = {r['index']: r for r in read_records(run_dir / 'predictions.jsonl')}
    lines = {r['index']: r for r in read_records(run_dir / layout.RECORDS)}
    assert set(preds) == set(lines) and len(preds) == N
    before = {i: lines[i]['pred_initial'] == preds[i]['label'] for i in preds}
    after = {i: preds[i]['correct'] for i in preds}
    return dict(n=N, changed=sum(lines[i]['pred_initial'] != preds[i]['pred'] for i in preds),
                wrong_to_right=sum(after[i] and not before[i] for i in preds),
                right_to_wrong=sum(before[i] and not after[i] for i in preds),
                top1=100.0 * sum(after.values()) / N)


def test_report_of_two_runs_side_by_side(tools, run_dirs, tmp_path):
    out = tmp_path / 'report'
    md = tools[1].main([str(run_dirs / 'tpt'), str(run_dirs / 'maple'), '--out', str(out), '--names', 'TPT', 'MaPLe'])
    text = md.read_text()
    assert '| TPT' in text and 'MaPLe' in text and 'wrong -> right' in text
    for name in ('prompt_change.png', 'flips.png', 'consistency.png'):
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', name
        assert f']({name})' in text
    summaries = {s['name']: s for s in json.loads((out / 'analysis.json').read_text())}
    for name, folder in (('TPT', 'tpt'), ('MaPLe', 'maple')):
        got, hand = summaries[name]['flips'], _by_hand(run_dirs / folder)
        for key, value in hand.items():
            assert got[key] == pytest.approx(value), (name, key)
        metrics = json.loads((run_dirs / folder / 'metrics.json').read_text())['metrics']
        assert got['top1'] == pytest.approx(metrics['top1'])
    assert summaries['TPT']['branches'] == ['text', 'all'] and summaries['TPT']['consistency']['pred'] is None
    assert summaries['MaPLe']['branches'] == ['text', 'vision', 'all']
    assert summaries['MaPLe']['consistency']['pred']['n'] == N
    lines = read_records(run_dirs / 'maple' / layout.RECORDS)
    mean_vision = sum(r['prompt_change']['vision'] for r in lines) / N
    assert summaries['MaPLe']['prompt_change']['vision']['mean'] == pytest.approx(mean_vision)
    assert summaries['MaPLe']['text_variance']['samples'] == N and summaries['MaPLe']['text_variance']['covers_all']


def test_shard_jobs_write_their_own_files_and_the_report_reads_them_all(tools, overrides, run_dirs, tmp_path):
    for shard in ('0/2', '1/2'):
        run(tools, TPT, tmp_path, overrides, '--shard', shard, '--no-resume')
    assert not (tmp_path / 'shards').exists() and not (tmp_path / layout.RECORDS).exists()
    assert layout.record_tags(tmp_path) == ['0-of-2', '1-of-2']
    sharded, single = load_run(tmp_path), load_run(run_dirs / 'tpt')
    assert sharded.records == single.records and sharded.notes == []
    a, b = sharded.sums.variance(), single.sums.variance()
    assert a['samples'] == b['samples'] == N and a['variance'] == pytest.approx(b['variance'], rel=1e-9)


def test_interrupted_then_resumed_run_records_each_sample_once(tools, overrides, run_dirs, tmp_path):
    run(tools, TPT, tmp_path, dict(overrides, **{'data.max_samples': 3}))
    run(tools, TPT, tmp_path, overrides)  # resumes: the 3 others
    assert [p.name for _, _, p in layout.sums_files(tmp_path)] == ['all.1.npz', 'all.2.npz']
    resumed, single = load_run(tmp_path), load_run(run_dirs / 'tpt')
    assert resumed.records == single.records and resumed.sums_cover_all
    assert resumed.sums.variance()['variance'] == pytest.approx(single.sums.variance()['variance'], rel=1e-9)
    run(tools, TPT, tmp_path, dict(overrides, **{'data.max_samples': 2}), '--no-resume')
    assert len(load_run(tmp_path).records) == 2 and len(layout.sums_files(tmp_path)) == 1


def test_run_without_the_recording_is_a_clear_error(tools, overrides, tmp_path, capsys):
    overrides = {k: v for k, v in overrides.items() if not k.startswith('tta.')}  # zero-shot: no adaptation keys
    run(tools, ZS, tmp_path, overrides, record=False)
    with pytest.raises(ResourceError) as err:
        load_run(tmp_path)
    assert "custom_hooks=[dict(type='AdaptationRecorder')]" in err.value.fix and '--no-resume' in err.value.fix
    assert tools[1].run_cli(tools[1].main, [str(tmp_path)]) == 1
    assert 'no adaptation recording' in capsys.readouterr().err
    with pytest.raises(ConfigError, match='does not tune prompts'):  # and a method that does not adapt prompts
        run(tools, ZS, tmp_path / 'zs', overrides)


def test_recording_of_other_predictions_is_refused(run_dirs, tmp_path):
    shutil.copytree(run_dirs / 'tpt', tmp_path / 'run')
    lines = read_records(tmp_path / 'run' / layout.RECORDS)
    lines[2]['pred'] = (lines[2]['pred'] + 1) % 4
    (tmp_path / 'run' / layout.RECORDS).write_text(''.join(json.dumps(r) + '\n' for r in lines))
    with pytest.raises(ProvenanceError, match='does not belong to these predictions'):
        load_run(tmp_path / 'run')
