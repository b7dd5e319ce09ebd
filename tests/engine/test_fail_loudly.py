"""Fail loudly, never silently: each protection of the execution layer, end to end through the tools.

Non-finite numbers are failures, never a class or a checkpoint; unknown keys and malformed values are errors naming
the fix; the subset does not depend on the seed; the work dir has one owner; errors reach the log; missing
resources are listed at once; the class mapping is recorded; hooks and update schedules registered by a user are
used. (Replaced files and banks of another source: test_provenance.py, which shares the helpers below.) Tiny
random-weight model, 12 generated images, one thread. The tests named test_bug_* fail until the bug they describe
is fixed.
"""
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from promptsync import engine
from promptsync.engine import Runner
from promptsync.errors import ConfigError, LockError, NonFiniteError, ResourceError
from promptsync.evaluation import read_records
from promptsync.experiments.suites import cell_config, dataset_overrides
from promptsync.hooks import Hook
from promptsync.losses.base import TTALoss
from promptsync.losses.entropy import marginal_entropy
from promptsync.registry import HOOKS, LOSSES, UPDATE_SCHEDULES
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.tta.update_schedules import UpdateSchedule
from promptsync.utils.cli import run_cli
from promptsync.utils.config import load_config
from promptsync.utils.state_file import load_state

from ..conftest import CLASSES, TINY
from ..tools.helpers import ROOT, load_tool, options

TPT = ROOT / 'configs/tpt/vit_b16_imagenet_r.py'
ZS = ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py'
MAPLE_TPT = ROOT / 'configs/maple_tpt/vit_b16_imagenet_r.py'
SHAPES_SYNC = ROOT / 'configs/shapes/promptsync.py'
N = 12  # images of the fake folder: 4 classes x 3


# ---------------------------------------------------------------- user modules (registered on import)
EVENTS: list[dict] = []


@HOOKS.register_module()
class FailLoudlyRecorderHook(Hook):
    """Records the stages it sees (with mmengine's signatures, so a wrong call raises)."""

    def __init__(self, tag: str = 'hook'):
        self.tag = tag

    def _add(self, stage, runner, **kw):
        EVENTS.append(dict(tag=self.tag, stage=stage, runner=runner, **kw))

    def before_run(self, runner):
        self._add('before_run', runner)

    def before_test_epoch(self, runner):
        self._add('before_test_epoch', runner)

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._add('before_test_iter', runner, batch_idx=batch_idx, data_batch=data_batch)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._add('after_test_iter', runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)

    def after_test_epoch(self, runner, metrics=None):
        self._add('after_test_epoch', runner, metrics=metrics)

    def after_run(self, runner):
        self._add('after_run', runner)

    def before_train_epoch(self, runner):
        self._add('before_train_epoch', runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._add('after_train_iter', runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)

    def after_val_epoch(self, runner, metrics=None):
        self._add('after_val_epoch', runner, metrics=metrics)

    def before_save_checkpoint(self, runner, checkpoint):
        self._add('before_save_checkpoint', runner, checkpoint=checkpoint)

    def after_train_epoch(self, runner):
        self._add('after_train_epoch', runner)

    def before_sample(self, runner, ctx):
        self._add('before_sample', runner, ctx=ctx, index=ctx.index)

    def after_selection(self, runner, ctx):
        self._add('after_selection', runner, ctx=ctx, selected=ctx.selected.clone())

    def after_loss(self, runner, ctx):  # what the step is about to change
        self._before_step = {k: v.detach().clone() for k, v in ctx.model.prompt_learner.named_parameters()}

    def after_step(self, runner, ctx):
        moved = {k for k, v in ctx.model.prompt_learner.named_parameters() if not torch.equal(v, self._before_step[k])}
        self._add('after_step', runner, index=ctx.index, phase=ctx.extra.get('phase'), moved=moved)

    def after_sample(self, runner, ctx, result):
        self._add('after_sample', runner, index=ctx.index, result=result)


@LOSSES.register_module()
class FailLoudlyNaNLoss(TTALoss):
    """TPT's marginal entropy, times NaN for the samples in ``indices`` (all when None)."""

    def __init__(self, indices=None):
        super().__init__()
        self.indices = None if indices is None else {int(i) for i in indices}

    def forward(self, ctx):
        entropy = marginal_entropy(ctx.selected_logits)
        return entropy * float('nan') if self.indices is None or ctx.index in self.indices else entropy


@UPDATE_SCHEDULES.register_module()
class FailLoudlyTextThenJoint(UpdateSchedule):
    branches = ('text', 'joint')


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope='module', autouse=True)
def one_thread_own_hash_cache(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from threads on 2 shared cores
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PROMPTSYNC_CACHE', str(tmp_path_factory.mktemp('hash_cache')))
        yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_events():
    EVENTS.clear()
    yield
    EVENTS.clear()


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


@pytest.fixture(scope='module')
def proto_tool():
    return load_tool('compute_prototypes')


def tiny(folder):
    """conftest's tiny_overrides, for module-scoped fixtures."""
    return {'model.backbone.model_name': TINY, 'model.backbone.pretrained': None, 'model.backbone.precision': 'fp32',
            'data.dataset.type': 'ImageFolder', 'data.dataset.root': str(folder), 'data.num_workers': 0,
            'device': 'cpu', 'default_hooks.progress.disable': True}


def small(ov, **extra):
    return dict(ov, **{'tta.views.n_views': 8, 'tta.selection.ratio': 0.25}, **extra)


def cli(config, work_dir, ov, *flags):
    """tools/test.py-style argv: flags before --cfg-options (which takes every item after it)."""
    return [str(config), '--work-dir', str(work_dir), *flags, *options(ov)]


def by_index(path):
    return sorted(read_records(path), key=lambda r: r['index'])


def run_json(work_dir):
    return json.loads((Path(work_dir) / 'run.json').read_text())


def subset(n, k, seed):  # the subset rule of docs: one permutation drawn with data.subset_seed
    return sorted(np.random.default_rng(seed).permutation(n)[:k].tolist())


# ---------------------------------------------------------------- 4. non-finite logits
@pytest.fixture(scope='module')
def nan_run(test_tool, tmp_path_factory, fake_folder):
    """TPT whose loss is NaN for every sample: (result, work dir)."""
    work = tmp_path_factory.mktemp('nan')
    out = test_tool.main(cli(TPT, work, small(tiny(fake_folder), **{
        'tta.losses': "[dict(type='FailLoudlyNaNLoss', weight=1.0)]"})))
    return out, work


def test_nonfinite_logits_are_failed_samples_never_a_class(nan_run, fake_folder):
    out, work = nan_run
    records = by_index(work / 'predictions.jsonl')
    assert [r['index'] for r in records] == list(range(N))
    for r in records:
        assert r['nonfinite'] is True and r['pred'] == -1 and r['correct'] is False and r['topk'] == []
    metrics = json.loads((work / 'metrics.json').read_text())
    assert metrics['num_nonfinite'] == out['num_nonfinite'] == N and metrics['num_samples'] == N
    assert metrics['metrics']['top1'] == 0.0 and metrics['metrics']['top5'] == 0.0
    log = (work / 'log.txt').read_text()
    assert f"sample 0 ({fake_folder / 'cat' / '0000.png'}): non-finite logits" in log
    assert f'{N} of {N} samples had non-finite logits' in log


def test_some_nonfinite_samples_count_as_wrong_over_all_samples(test_tool, tmp_path, tiny_overrides):
    bad = [1, 4, 9]
    test_tool.main(cli(TPT, tmp_path / 'ref', small(tiny_overrides)))
    test_tool.main(cli(TPT, tmp_path / 'mix', small(tiny_overrides, **{
        'tta.losses': f"[dict(type='FailLoudlyNaNLoss', indices={bad})]"})))
    ref, mix = by_index(tmp_path / 'ref' / 'predictions.jsonl'), by_index(tmp_path / 'mix' / 'predictions.jsonl')
    assert len(ref) == len(mix) == N
    keys = ('index', 'label', 'pred', 'correct', 'topk', 'confidence')
    for r, m in zip(ref, mix):
        if r['index'] in bad:
            assert m['nonfinite'] is True and m['pred'] == -1 and m['correct'] is False
        else:  # a failed sample does not leak into the next ones (episodic reset)
            assert {k: m[k] for k in keys} == {k: r[k] for k in keys} and 'nonfinite' not in m
    correct = sum(r['correct'] for r in ref if r['index'] not in bad)
    assert correct > 0  # else correct/total and correct/finite would agree
    metrics = json.loads((tmp_path / 'mix' / 'metrics.json').read_text())
    assert metrics['num_nonfinite'] == len(bad) and metrics['nonfinite_indices'] == bad
    assert metrics['metrics']['top1'] == pytest.approx(100.0 * correct / N)


# ---------------------------------------------------------------- 5. training stops at a non-finite loss
def train_cfg(root, work_dir, epochs, lr, hooks=(), warmup_epochs=1):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
        train_data=dict(dataset=dict(type='ImageFolder', root=str(root)), num_shots=2, batch_size=4, num_workers=0),
        val_data=dict(dataset=dict(type='ImageFolder', root=str(root)), max_samples=None),
        trainer=dict(type='PromptTrainer', epochs=epochs, optimizer=dict(type='AdamW', lr=lr),
                     warmup_epochs=warmup_epochs, warmup_lr=1e-5, log_interval=0),
        seed=0, device='cpu', work_dir=str(work_dir), log_level='WARNING',
        default_hooks=dict(progress=dict(type='ProgressBarHook', disable=True)), custom_hooks=list(hooks)))


def test_training_stops_at_the_first_nonfinite_loss_and_saves_nothing_from_it(tmp_path, fake_folder):
    work = tmp_path / 'train'
    # epoch 1 is the warm-up at 1e-5; the first step at lr 1e30 makes the next loss NaN
    with pytest.raises(NonFiniteError) as err:
        engine.fit_prompts(train_cfg(fake_folder, work, epochs=3, lr=1e30))
    assert 'at epoch 2, iteration 2' in err.value.what
    assert not (work / 'prompt_learner.safetensors').exists()
    tensors, document = load_state(work / 'resume_state.safetensors')
    assert document['epoch'] == 1 and [h['epoch'] for h in document['history']] == [1]
    learner = {k: v for k, v in tensors.items() if k.startswith('learner.')}
    assert learner and all(bool(torch.isfinite(v).all()) for v in learner.values())
    assert len((work / 'train_log.jsonl').read_text().splitlines()) == 1
    assert err.value.what in (work / 'log.txt').read_text()


# ---------------------------------------------------------------- 6. unknown config keys
def test_unknown_keys_are_one_error_naming_the_closest_key(test_tool, tmp_path, tiny_overrides, capsys):
    user = tmp_path / 'typo.py'
    user.write_text(f"_base_ = ['{TPT}']\ndata = dict(num_worker=0)\n")
    argv = cli(user, tmp_path / 'w', small(tiny_overrides, **{
        'data.max_sample': 1, 'sed': 3, 'tta.optimizer.lrr': 0.1, 'data.dataset.clasnames': 'x'}))
    with pytest.raises(ConfigError) as err:
        test_tool.main(argv)
    message = err.value.message
    assert message.startswith('5 config key(s) mean nothing to promptsync')
    for wrong, right in (('data.max_sample', 'max_samples'), ('sed', 'seed'), ('data.num_worker', 'num_workers')):
        assert f"unknown config key '{wrong}': did you mean '{right}'?" in message
    assert "'AdamW' (tta.optimizer) has no argument 'lrr': did you mean 'lr'?" in message
    assert "'ImageFolder' (data.dataset) has no argument 'clasnames': did you mean 'classnames'?" in message
    assert str(user) in message
    capsys.readouterr()
    assert run_cli(test_tool.main, argv) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith('error: 5 config key(s)') and "did you mean 'lr'?" in stderr
    assert 'Traceback' not in stderr
    assert not (tmp_path / 'w').exists()  # refused before anything was written


# ---------------------------------------------------------------- 7. --cfg-options values
def test_cfg_option_values_keep_spaces_refuse_two_numbers_and_read_lists_of_dicts(test_tool, tmp_path,
                                                                                 tiny_overrides, fake_folder,
                                                                                 capsys):
    spaced = shutil.copytree(fake_folder, tmp_path / 'my images' / 'set 1')
    hooks = "[dict(type='ProgressBarHook', disable=True), dict(type='FailLoudlyRecorderHook', tag='cli')]"
    out = test_tool.main(cli(ZS, tmp_path / 'w', dict(tiny_overrides, **{
        'data.dataset.root': str(spaced), 'custom_hooks': hooks})))
    assert out['num_samples'] == N
    records = by_index(tmp_path / 'w' / 'predictions.jsonl')
    assert records[0]['path'] == str(spaced / 'cat' / '0000.png')
    dumped = Config.fromfile(str(tmp_path / 'w' / 'config.py'))
    assert dumped.data.dataset.root == str(spaced)
    assert dumped.custom_hooks == [dict(type='ProgressBarHook', disable=True),
                                   dict(type='FailLoudlyRecorderHook', tag='cli')]
    assert {e['tag'] for e in EVENTS} == {'cli'} and 'after_run' in [e['stage'] for e in EVENTS]
    capsys.readouterr()
    code = run_cli(test_tool.main, cli(TPT, tmp_path / 'lr', dict(tiny_overrides, **{'tta.optimizer.lr': '1e-3 0'})))
    stderr = capsys.readouterr().err
    assert code == 2 and "tta.optimizer.lr expects a number (it is 0.005), but '1e-3 0' is not one number." in stderr
    assert 'Traceback' not in stderr
    with pytest.raises(ConfigError, match='not one number'):  # the same through the Python entry point
        load_config(TPT, {'tta.optimizer.lr': '1e-3 0'})


# ---------------------------------------------------------------- 8. max samples must be positive
@pytest.mark.parametrize('value', ['0', '-5'])
def test_max_samples_below_one_is_refused_by_argparse(test_tool, tmp_path, tiny_overrides, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        test_tool.main(cli(ZS, tmp_path, tiny_overrides, '--max-samples', value))
    assert exit_.value.code == 2
    assert f'must be >= 1, got {value}' in capsys.readouterr().err


def test_max_samples_zero_in_the_config_is_a_config_error(test_tool, tmp_path, tiny_overrides, capsys):
    user = tmp_path / 'zero.py'
    user.write_text(f"_base_ = ['{ZS}']\ndata = dict(max_samples=0)\n")
    with pytest.raises(ConfigError, match='max_samples must be a positive integer'):
        test_tool.main(cli(user, tmp_path / 'w', tiny_overrides))
    capsys.readouterr()
    assert run_cli(test_tool.main, cli(user, tmp_path / 'w', tiny_overrides)) == 2
    assert 'error: max_samples must be a positive integer' in capsys.readouterr().err
    assert not (tmp_path / 'w' / 'predictions.jsonl').exists()


# ---------------------------------------------------------------- 9. the subset does not depend on the seed
def test_max_samples_subset_is_the_same_for_every_seed(test_tool, tmp_path, tiny_overrides):
    want = subset(N, 5, 0)  # drawn with data.subset_seed (0), not the run seed
    assert want != subset(N, 5, 1)  # so drawing with the run seed would be seen
    recs = {}
    for seed in (0, 1):
        out = test_tool.main(cli(TPT, tmp_path / f's{seed}', small(tiny_overrides), '--seed', str(seed),
                                 '--max-samples', '5'))
        assert out['seed'] == seed
        recs[seed] = by_index(tmp_path / f's{seed}' / 'predictions.jsonl')
    assert [r['index'] for r in recs[0]] == [r['index'] for r in recs[1]] == want
    assert [r['confidence'] for r in recs[0]] != [r['confidence'] for r in recs[1]]  # the views follow the seed


# ---------------------------------------------------------------- 10. the benchmark's help example
def test_suite_max_samples_option_keeps_the_suite_per_class(tmp_path, monkeypatch):
    monkeypatch.setenv('PROMPTSYNC_CKPT', str(tmp_path / 'ckpt'))
    cfg = load_config(ROOT / 'configs/suites/shapes_demo.py', {'suite.cfg_options.data.max_samples': 50})
    suite = cfg.suite
    for method in ('tpt', 'promptsync'):
        entry = suite.methods[method]
        cell = cell_config(str(ROOT / entry.config), dict(suite.cfg_options, **entry.get('cfg_options', {})),
                           dataset_overrides(suite.datasets.sketch, method), 0, tmp_path / 'cells' / method / 's' / 'x')
        assert cell.data.max_samples == 50
        assert cell.data.dataset.per_class == 10  # the suite's, not the config's 50
        assert cell.data.dataset.domain == 'sketch' and cell.data.dataset.type == 'SyntheticShapes'
        assert load_config(ROOT / entry.config).data.dataset.per_class == 50


# ---------------------------------------------------------------- 11. the work-dir lock
def test_a_live_lock_is_refused_a_dead_one_taken_over(test_tool, tmp_path, tiny_overrides):
    work = tmp_path / 'w'
    work.mkdir()
    lock = work / '.lock'
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        lock.write_text(json.dumps(dict(pid=other.pid, host=socket.gethostname(), started='2024-01-01T00:00:00')))
        with pytest.raises(LockError) as err:
            test_tool.main(cli(ZS, work, tiny_overrides))
        assert f'in use by process {other.pid} on {socket.gethostname()}' in str(err.value)
        assert json.loads(lock.read_text())['pid'] == other.pid  # the owner's lock is left alone
        assert not (work / 'config.py').exists() and not (work / 'log.txt').exists()
    finally:
        other.kill()
        other.wait()
    assert lock.exists()  # its owner is gone now
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    std = logging.getLogger('promptsync.lock')
    std.addHandler(handler)
    try:
        out = test_tool.main(cli(ZS, work, tiny_overrides))
    finally:
        std.removeHandler(handler)
    assert out['num_samples'] == N
    warnings = [r.getMessage() for r in seen if r.levelno == logging.WARNING]
    assert warnings == [f'taking over the lock of {work}: its process {other.pid} is gone']
    assert not lock.exists() and not list(work.glob('.lock*'))


# ---------------------------------------------------------------- 12. errors go to the log
def test_errors_go_to_the_log_and_stderr_without_traceback_unless_debug(test_tool, tmp_path, tiny_overrides,
                                                                       capsys):
    ov = dict(tiny_overrides, **{'data.dataset.root': str(tmp_path / 'nowhere')})
    capsys.readouterr()
    assert run_cli(test_tool.main, cli(ZS, tmp_path / 'w', ov)) == 1
    stderr = capsys.readouterr().err
    assert 'error: 1 resource(s) this test run needs are missing' in stderr and str(tmp_path / 'nowhere') in stderr
    assert 'Traceback' not in stderr and '--debug' in stderr
    log = (tmp_path / 'w' / 'log.txt').read_text()
    assert '1 resource(s) this test run needs are missing' in log and 'data.dataset.root' in log
    assert 'Traceback (most recent call last)' in log and 'ResourceError' in log
    assert not (tmp_path / 'w' / '.lock').exists()  # a failed run releases the work dir
    assert run_cli(test_tool.main, cli(ZS, tmp_path / 'w', ov, '--debug')) == 1
    stderr = capsys.readouterr().err
    assert 'Traceback (most recent call last)' in stderr and 'error: 1 resource(s)' in stderr
    assert (tmp_path / 'w' / 'log.txt').read_text().count('Traceback (most recent call last)') == 2


# ---------------------------------------------------------------- 13. every missing resource at once
def resource_table(text):
    """The rows of the --check table (tabulate 'simple', long cells wrapped onto continuation lines)."""
    lines = text.rstrip('\n').splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) <= {'-', ' '} and '-' in line)
    spans, start = [], None
    for i, ch in enumerate(lines[rule] + ' '):
        if ch == '-' and start is None:
            start = i
        elif ch != '-' and start is not None:
            spans.append((start, i))
            start = None
    names = [lines[rule - 1][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[rule + 1:]:
        cells = [line[a:b + 1].strip() for a, b in spans]  # +1: a cell may end in the column gap
        if cells[0]:
            rows.append(dict(zip(names, cells)))
        else:  # a wrapped cell goes on (paths without spaces, the fix as words)
            for name, cell in zip(names, cells):
                if cell:
                    rows[-1][name] += (' ' if name == 'fix' else '') + cell
    return rows


def test_check_lists_every_missing_resource_and_a_run_names_them_all(test_tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('PROMPTSYNC_CKPT', str(tmp_path / 'empty_ckpt'))
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path / 'data'))
    (tmp_path / 'empty_ckpt').mkdir()
    bank = tmp_path / 'empty_ckpt' / 'shapes' / 'prototypes_ps_shapes_vit_maple_photo_train.safetensors'
    capsys.readouterr()
    assert run_cli(test_tool.main, [str(SHAPES_SYNC), '--check']) == 1
    rows = {r['resource']: r for r in resource_table(capsys.readouterr().out)}
    assert rows['prototype bank']['status'] == 'missing' and rows['prototype bank']['value'] == str(bank)
    assert 'tools/compute_prototypes.py' in rows['prototype bank']['fix']
    assert rows['test data root']['status'] == 'generated on first use'  # the shapes are rendered, not missing
    gone = tmp_path / 'no_data'
    argv = [str(SHAPES_SYNC), '--work-dir', str(tmp_path / 'w'), '--device', 'cpu', '--cfg-options',
            f"data.dataset=dict(_delete_=True, type='ImageFolder', root='{gone}')",
            'default_hooks.progress.disable=True']
    assert run_cli(test_tool.main, argv[:1] + ['--check'] + argv[1:]) == 1
    table = resource_table(capsys.readouterr().out)
    assert {r['config key']: r['status'] for r in table} == {
        'data.dataset.root': 'missing', 'model.backbone.pretrained': 'found', 'model.prompt_checkpoint': 'found',
        'prototypes.file': 'missing'}  # every resource, the shipped files found
    assert {r['value'] for r in table if r['status'] == 'missing'} == {str(gone), str(bank)}
    with pytest.raises(ResourceError) as err:
        test_tool.main(argv)
    assert err.value.what.startswith('2 resource(s) this test run needs are missing')
    assert str(gone) in err.value.what and str(bank) in err.value.what
    assert not (tmp_path / 'w' / 'predictions.jsonl').exists()


# ---------------------------------------------------------------- 14. the class mapping is recorded
def test_image_folder_class_mapping_is_in_run_json(test_tool, tmp_path, tiny_overrides, fake_folder):
    names = ['kitty', 'puppy', 'retriever', 'tabby']
    test_tool.main(cli(ZS, tmp_path, dict(tiny_overrides, **{'data.dataset.classnames': str(names)})))
    folders = sorted(p.name for p in fake_folder.iterdir() if p.is_dir())
    want = [dict(label=i, folder=f, name=n, images=len(list((fake_folder / f).iterdir())))
            for i, (f, n) in enumerate(zip(folders, names))]
    assert run_json(tmp_path)['classes'] == want
    assert folders == sorted(CLASSES) and all(w['images'] == 3 for w in want)
    labels = {r['path'].split(os.sep)[-2]: r['label'] for r in read_records(tmp_path / 'predictions.jsonl')}
    assert labels == {w['folder']: w['label'] for w in want}


# ---------------------------------------------------------------- 15. custom hooks: every stage, runner first
def test_custom_hooks_see_loop_and_tta_stages_runner_first_in_priority_order(test_tool, tmp_path, tiny_overrides):
    hooks = ("[dict(type='FailLoudlyRecorderHook', tag='low', priority='LOW'), "
             "dict(type='FailLoudlyRecorderHook', tag='high', priority='HIGH')]")
    out = test_tool.main(cli(TPT, tmp_path, small(tiny_overrides, **{'custom_hooks': hooks}), '--max-samples', '2'))
    high = [e for e in EVENTS if e['tag'] == 'high']
    assert [e['tag'] for e in EVENTS] == ['high', 'low'] * len(high)  # HIGH first though listed second
    assert [e['stage'] for e in EVENTS[::2]] == [e['stage'] for e in EVENTS[1::2]]
    per_sample = ['before_test_iter', 'before_sample', 'after_selection', 'after_step', 'after_sample',
                  'after_test_iter']
    assert [e['stage'] for e in high] == ['before_run', 'before_test_epoch', *per_sample, *per_sample,
                                          'after_test_epoch', 'after_run']
    runner = high[0]['runner']
    assert isinstance(runner, Runner) and all(e['runner'] is runner for e in EVENTS)
    indices = subset(N, 2, 0)
    iters = [e for e in high if e['stage'] == 'after_test_iter']
    assert [e['batch_idx'] for e in iters] == [0, 1]
    assert [[int(i) for i in e['data_batch']['index']] for e in iters] == [[i] for i in indices]
    assert all(isinstance(e['outputs'][0], SampleResult) for e in iters)
    assert [e['outputs'][0].index for e in iters] == indices
    selections = [e for e in high if e['stage'] == 'after_selection']
    assert all(isinstance(e['ctx'], TTAContext) and len(e['selected']) == 2 for e in selections)  # 8 views x 0.25
    assert [e['ctx'].index for e in selections] == indices
    assert [e['index'] for e in high if e['stage'] == 'after_sample'] == indices
    assert high[-2]['metrics'] == out['metrics']


def test_training_calls_the_custom_hooks(tmp_path, fake_folder):
    work = tmp_path / 'train'
    result = engine.fit_prompts(train_cfg(fake_folder, work, epochs=1, lr=0.05, warmup_epochs=0,
                                          hooks=[dict(type='FailLoudlyRecorderHook', tag='train')]))
    stages = [e['stage'] for e in EVENTS]
    assert stages == ['before_run', 'before_train_epoch', 'after_train_iter', 'after_train_iter', 'after_val_epoch',
                      'before_save_checkpoint', 'after_train_epoch', 'after_run']  # 8 shots / batch 4 = 2 steps
    runner = EVENTS[0]['runner']
    assert isinstance(runner, Runner) and all(e['runner'] is runner for e in EVENTS)
    iters = [e for e in EVENTS if e['stage'] == 'after_train_iter']
    assert [e['batch_idx'] for e in iters] == [0, 1] and all(len(e['data_batch']['index']) == 4 for e in iters)
    history = result.summary['history']
    losses = [e['outputs']['loss'] for e in iters]
    assert history[0]['loss'] == pytest.approx(sum(losses) / 2)  # the mean of the steps' batch means
    assert EVENTS[4]['metrics'] == dict(top1=history[0]['val_acc'])
    saved = EVENTS[5]['checkpoint']
    assert saved['epoch'] == 1 and saved['fingerprint'] == run_json(work)['fingerprint']
    assert load_state(work / 'resume_state.safetensors')[1]['fingerprint'] == saved['fingerprint']


# ---------------------------------------------------------------- 16. a user-registered update schedule
def run_with_schedule(test_tool, work_dir, overrides, update):
    return test_tool.main(cli(MAPLE_TPT, work_dir, small(overrides, **{
        'model.prompt_checkpoint': None, 'tta.update': update,
        'custom_hooks': "[dict(type='FailLoudlyRecorderHook', tag='phases')]"}), '--max-samples', '2'))


def check_phases(out):
    assert out['method_stats']['update'] == 'FailLoudlyTextThenJoint'
    steps = [e for e in EVENTS if e['stage'] == 'after_step']
    assert [(e['index'], e['phase']) for e in steps] == [(i, p) for i in subset(N, 2, 0) for p in ('text', 'joint')]
    for e in steps:
        if e['phase'] == 'text':  # MaPLe's couplings are frozen in a text phase
            assert 'ctx' in e['moved'] and all(k.startswith(('ctx', 'compound_prompts_text.')) for k in e['moved'])
        else:
            assert 'ctx' in e['moved'] and {'proj.weight', 'compound_prompt_projections.0.weight'} <= e['moved']


@pytest.mark.parametrize('update', ['FailLoudlyTextThenJoint', 'dict(_delete_=True, type=FailLoudlyTextThenJoint)'])
def test_user_update_schedule_is_used_by_episodic_tta(test_tool, tmp_path, tiny_overrides, update):
    check_phases(run_with_schedule(test_tool, tmp_path, tiny_overrides, update))


# ---------------------------------------------------------------- regressions of bugs found while writing these tests
def test_documented_update_dict_form_works_on_the_maple_configs(test_tool, tmp_path, tiny_overrides):
    """update_schedules.py documents ``tta.update=dict(type='MySchedule')``; it must work on the MaPLe-based configs
    (MaPLe+TPT, PromptAlign, PromptSync) — mmengine refuses to merge a dict into a string, and a dict given for a key
    that holds no dict can only mean a replacement."""
    check_phases(run_with_schedule(test_tool, tmp_path, tiny_overrides, 'dict(type=FailLoudlyTextThenJoint)'))


def test_predictions_of_failed_samples_are_strict_json(nan_run):
    """A failed sample's loss terms must be strict JSON (a bare NaN is refused by jq, JavaScript, Go)."""
    _, work = nan_run

    def refuse(name):
        raise ValueError(f'{name} is not JSON')
    for line in (work / 'predictions.jsonl').read_text().splitlines():
        json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize('key, value, closest', [('tta.losses.0.wieght', 2.0, 'weight'),
                                                 ('tta.reset.typo', 1, None),
                                                 ('tta.grad_scaler.init_scal', 2.0, 'init_scale')])
def test_config_check_covers_keys_of_constructorless_modules_and_grad_scaler(test_tool, tmp_path, tiny_overrides, key, value,
                                                             closest):
    """Losses and reset policies without their own __init__ inherit ``(*args, **kwargs)`` (nn.Module / object); they
    take no argument, and grad_scaler keys are GradScaler's. A wrong key must fail before the work dir is written,
    as a ConfigError naming the closest key (not a plain TypeError, exit code 1, later)."""
    with pytest.raises(ConfigError) as err:
        test_tool.main(cli(TPT, tmp_path / 'w', small(tiny_overrides, **{key: value})))
    assert err.value.what.startswith('1 config key(s) mean nothing to promptsync')
    if closest:
        assert f"did you mean '{closest}'?" in err.value.what
    assert not (tmp_path / 'w').exists()


def test_nested_argument_error_keeps_its_class(tiny_overrides):
    """An unknown argument of a module built inside another (a loss inside the TTA method) stays an ArgumentError
    (a ConfigError: exit code 2); the outer build must not re-raise it as a plain TypeError."""
    from promptsync.models import build_model
    from promptsync.registry import TTA_METHODS
    model = build_model(dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                             prompt_learner=dict(type='CoOp', n_ctx=2)), CLASSES, 'cpu')
    with pytest.raises(ConfigError, match="has no argument 'wieght'"):
        TTA_METHODS.build(dict(type='EpisodicTTA', losses=[dict(type='FailLoudlyNaNLoss', wieght=1.0)]),
                          default_args=dict(model=model))


def test_training_calls_the_before_iter_stages(tmp_path, fake_folder):
    """mmengine's loops call before_train_iter / before_val_iter (and before_val / after_val); the training loop
    must too, or an mmengine hook that pairs them (timers, per-iteration set-up) breaks."""
    @HOOKS.register_module(name='FailLoudlyBeforeIterHook', force=True)
    class BeforeIter(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            EVENTS.append(dict(stage='before_train_iter', batch_idx=batch_idx, n=len(data_batch['index'])))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            EVENTS.append(dict(stage='after_train_iter', batch_idx=batch_idx))

        def before_val(self, runner):
            EVENTS.append(dict(stage='before_val'))

        def before_val_iter(self, runner, batch_idx, data_batch=None):
            EVENTS.append(dict(stage='before_val_iter', batch_idx=batch_idx))

        def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            EVENTS.append(dict(stage='after_val_iter', batch_idx=batch_idx))

        def after_val(self, runner):
            EVENTS.append(dict(stage='after_val'))
    engine.fit_prompts(train_cfg(fake_folder, tmp_path, epochs=1, lr=0.05, warmup_epochs=0,
                                 hooks=[dict(type='FailLoudlyBeforeIterHook')]))
    assert [(e['stage'], e.get('batch_idx')) for e in EVENTS] == [
        ('before_train_iter', 0), ('after_train_iter', 0), ('before_train_iter', 1), ('after_train_iter', 1),
        ('before_val', None), ('before_val_iter', 0), ('after_val_iter', 0), ('after_val', None)]
