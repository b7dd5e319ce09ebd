"""Two CPU processes under torchrun (gloo) against one process: test, prototypes and training give the same files;
a rank that dies stops the run without a partial merge, and the same command resumes; --shard jobs merge to the
same files, by themselves or with tools/merge_shards.py."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from promptsync.evaluation import read_records
from promptsync.prototypes import PrototypeBank

from ..conftest import CLASSES, TINY
from ..tools.helpers import ROOT

TPT = str(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')
CRASH_HOOK = '''
import os

from promptsync.hooks import Hook
from promptsync.registry import HOOKS


@HOOKS.register_module()
class CrashOnRankOne(Hook):
    """While ``armed`` exists, rank 1 fails at its second batch (a crashed GPU, a killed process)."""

    def __init__(self, armed):
        self.armed, self.n = armed, 0

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.n += 1
        if runner.rank == 1 and self.n == 2 and os.path.exists(self.armed):
            raise RuntimeError('simulated failure on rank 1')
'''


@pytest.fixture(scope='module')
def env(tmp_path_factory, fake_folder):
    root = tmp_path_factory.mktemp('dist')
    (root / 'mods').mkdir()
    (root / 'mods' / 'crash_on_rank_one.py').write_text(CRASH_HOOK)
    (root / 'cfg.py').write_text(textwrap.dedent(f"""
        model = dict(backbone=dict(type='OpenCLIP', model_name='{TINY}', pretrained=None, precision='fp32'),
                     prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3))
        proxy_data = dict(dataset=dict(type='ImageFolder', root='{fake_folder}'), batch_size=2, num_workers=0)
        prototypes = dict(file='{root}/bank.safetensors', layers=(0, 2), per_class=True, token_stats='per_token')
        train_data = dict(dataset=dict(type='ImageFolder', root='{fake_folder}'), num_shots=None, batch_size=4,
                          num_workers=0)
        val_data = dict(dataset=dict(type='ImageFolder', root='{fake_folder}'))
        trainer = dict(type='PromptTrainer', epochs=1, optimizer=dict(type='SGD', lr=0.5, momentum=0.9),
                       warmup_epochs=0, log_interval=0)
        seed = 0
        device = 'cpu'
        default_hooks = dict(progress=dict(type='ProgressBarHook', disable=True))
    """))
    # every process with one intra-op thread (torchrun's default), so one and two processes compute alike
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    run_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(
        [str(root / 'mods'), str(ROOT), os.environ.get('PYTHONPATH', '')]))
    tpt_options = [f'{k}={v}' for k, v in {
        'model.backbone.model_name': TINY, 'model.backbone.pretrained': None, 'model.backbone.precision': 'fp32',
        'data.dataset.type': 'ImageFolder', 'data.dataset.root': fake_folder, 'data.num_workers': 0, 'device': 'cpu',
        'default_hooks.progress.disable': True, 'tta.views.n_views': 8, 'tta.selection.ratio': 0.25,
        'custom_imports': "dict(imports=['crash_on_rank_one'])"}.items()]
    return dict(root=root, env=run_env, cfg=str(root / 'cfg.py'), tpt=tpt_options)


def launch(env, tool, *args, procs=1, check=True):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={procs}',
           str(ROOT / 'tools' / f'{tool}.py'), *args, '--launcher', 'pytorch'] if procs > 1 else \
        [sys.executable, str(ROOT / 'tools' / f'{tool}.py'), *args]
    out = subprocess.run(cmd, env=env['env'], capture_output=True, text=True, timeout=300)
    if check and out.returncode:
        raise AssertionError(f'{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}')
    return out


def test_two_processes_predict_exactly_what_one_does(env):
    one, two = env['root'] / 'one', env['root'] / 'two'
    launch(env, 'test', TPT, '--work-dir', str(one), '--cfg-options', *env['tpt'])
    launch(env, 'test', TPT, '--work-dir', str(two), '--cfg-options', *env['tpt'], procs=2)
    assert (one / 'predictions.jsonl').read_bytes() == (two / 'predictions.jsonl').read_bytes()
    assert (one / 'metrics.json').read_bytes() == (two / 'metrics.json').read_bytes()
    assert len(read_records(one / 'predictions.jsonl')) == 12 and not (two / 'shards').exists()
    run = json.loads((two / 'run.json').read_text())
    assert run['world_size'] == 2 and run['status'] == 'done' and run['num_new'] == 12


def test_a_dead_rank_stops_the_run_nothing_is_merged_and_it_resumes(env):
    work, armed = env['root'] / 'crash', env['root'] / 'armed'
    armed.mkdir()  # a folder: a file named in the config would enter the fingerprint by its content
    hook = f"custom_hooks=[dict(type='CrashOnRankOne', armed='{armed}')]"  # the same config both times
    crash = launch(env, 'test', TPT, '--work-dir', str(work), '--cfg-options', *env['tpt'], hook, procs=2,
                   check=False)
    assert crash.returncode != 0
    assert 'simulated failure on rank 1' in crash.stderr and 'another rank failed' in crash.stderr
    assert 'simulated failure on rank 1' in (work / 'log.txt').read_text()  # any rank's error is in the one log
    assert not (work / 'metrics.json').exists() and not (work / 'predictions.jsonl').exists()
    done = sum(len(read_records(d / 'predictions.jsonl')) for d in (work / 'shards').iterdir())
    assert 0 < done < 12
    armed.rmdir()
    again = launch(env, 'test', TPT, '--work-dir', str(work), '--cfg-options', *env['tpt'], hook, procs=2)
    assert f'folded {done} predictions' in again.stderr
    one = env['root'] / 'one'
    if not one.exists():
        launch(env, 'test', TPT, '--work-dir', str(one), '--cfg-options', *env['tpt'])
    assert (work / 'predictions.jsonl').read_bytes() == (one / 'predictions.jsonl').read_bytes()
    run = json.loads((work / 'run.json').read_text())
    assert run['num_resumed'] == done and run['num_new'] == 12 - done


def test_shard_jobs_merge_by_themselves_or_by_tool(env):
    one = env['root'] / 'one'
    if not one.exists():
        launch(env, 'test', TPT, '--work-dir', str(one), '--cfg-options', *env['tpt'])
    auto, manual = env['root'] / 'auto', env['root'] / 'manual'
    for shard in ('1/3', '0/3', '2/3'):
        launch(env, 'test', TPT, '--work-dir', str(auto), '--shard', shard, '--cfg-options', *env['tpt'])
    assert (auto / 'predictions.jsonl').read_bytes() == (one / 'predictions.jsonl').read_bytes()
    assert json.loads((auto / 'metrics.json').read_text()) == json.loads((one / 'metrics.json').read_text())
    launch(env, 'test', TPT, '--work-dir', str(manual), '--shard', '0/2', '--cfg-options', *env['tpt'])
    early = launch(env, 'merge_shards', str(manual), check=False)
    assert early.returncode == 1 and 'have not finished' in early.stderr and 'nothing was merged' in early.stderr
    assert not (manual / 'metrics.json').exists()
    # the last shard finds the work dir busy (held by a live process), so it leaves the merge to the tool
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    try:
        (manual / '.lock').write_text(json.dumps(dict(pid=holder.pid, host=socket.gethostname(), started='now')))
        last = launch(env, 'test', TPT, '--work-dir', str(manual), '--shard', '1/2', '--cfg-options', *env['tpt'])
        assert 'merges them' in last.stderr and not (manual / 'predictions.jsonl').exists()
    finally:
        holder.kill()
        (manual / '.lock').unlink()
    merged = launch(env, 'merge_shards', str(manual))
    assert 'EpisodicTTA' in merged.stdout and not (manual / 'shards').exists()
    assert (manual / 'predictions.jsonl').read_bytes() == (one / 'predictions.jsonl').read_bytes()
    assert json.loads((manual / 'metrics.json').read_text()) == json.loads((one / 'metrics.json').read_text())


def test_prototypes_of_two_processes_equal_one_to_float64_rounding(env):
    root = env['root']
    launch(env, 'compute_prototypes', env['cfg'], '--cfg-options', f'prototypes.file={root}/one.safetensors')
    launch(env, 'compute_prototypes', env['cfg'], '--cfg-options', f'prototypes.file={root}/two.safetensors', procs=2)
    a, b = PrototypeBank.load(root / 'one.safetensors'), PrototypeBank.load(root / 'two.safetensors')
    assert torch.equal(a.counts, b.counts) and a.counts.tolist() == [3] * len(CLASSES)
    for layer in a.layers:  # float32 banks of float64 statistics merged across ranks
        assert torch.allclose(a.mean[layer], b.mean[layer], rtol=0, atol=1e-6)
        assert torch.allclose(a.var[layer], b.var[layer], rtol=0, atol=1e-6)
    assert torch.allclose(a.visual, b.visual, rtol=0, atol=1e-6)
    assert a.metadata['fingerprint'] == b.metadata['fingerprint'] and b.metadata['world_size'] == '2'
    assert a.metadata['images'] == b.metadata['images'] == '12'


def test_training_with_two_processes_takes_the_single_process_steps(env):
    root = env['root']
    launch(env, 'train', env['cfg'], '--work-dir', str(root / 't1'))
    launch(env, 'train', env['cfg'], '--work-dir', str(root / 't2'), procs=2)
    a, b = (load_file(str(root / d / 'prompt_learner.safetensors')) for d in ('t1', 't2'))
    assert a.keys() == b.keys()
    for key in a:  # one SGD step at lr 0.5 with momentum: equal up to float32 summation order
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-4), key
    logs = [[json.loads(line) for line in (root / d / 'train_log.jsonl').read_text().splitlines()] for d in ('t1', 't2')]
    assert logs[0][0]['images'] == logs[1][0]['images'] == 12
    assert logs[0][0]['loss'] == pytest.approx(logs[1][0]['loss'], rel=1e-5)
    assert logs[0][0]['val_acc'] == logs[1][0]['val_acc']
