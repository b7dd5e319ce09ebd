"""Provenance, end to end: a prompt checkpoint replaced at the same path, a prototype bank of another source and the
smoke suite's own bank are never mixed with, or written over, the results and files of another config.

The helpers, fixtures and the one-thread / own-hash-cache set-up are shared with test_fail_loudly.py.
"""
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from promptsync.datasets.fake import make_image_folder
from promptsync.engine.provenance import fingerprint, fingerprint_and_files
from promptsync.errors import ProvenanceError
from promptsync.experiments.suites import cell_config, dataset_overrides
from promptsync.models.prompt_learners import MaPLe
from promptsync.models.prompt_learners.checkpoint import save_prompt_checkpoint
from promptsync.utils.config import load_config
from promptsync.utils.files import read_safetensors_metadata

from ..conftest import CLASSES, tiny_backbone
from ..tools.helpers import ROOT, options
from .test_fail_loudly import (MAPLE_TPT, N, SHAPES_SYNC, cli, one_thread_own_hash_cache, proto_tool,  # noqa: F401
                               run_json, small, test_tool)


# ---------------------------------------------------------------- 1. a replaced prompt checkpoint
def save_maple(path, seed):
    torch.manual_seed(seed)
    learner = MaPLe(tiny_backbone(seed), n_ctx=2, ctx_init='a photo of a', depth=3, classnames=CLASSES)
    return save_prompt_checkpoint(learner.state_dict(), path, {'note': f'seed {seed}'})


def test_replaced_prompt_checkpoint_refuses_to_resume(test_tool, tmp_path, tiny_overrides):
    ckpt = tmp_path / 'maple.safetensors'
    save_maple(ckpt, 1)
    ov = small(tiny_overrides, **{'model.prompt_checkpoint': str(ckpt)})
    work = tmp_path / 'run'
    assert test_tool.main(cli(MAPLE_TPT, work, ov, '--max-samples', '5'))['num_samples'] == 5
    same = tmp_path / 'same.tmp'
    shutil.copyfile(ckpt, same)
    os.utime(same, ns=(ckpt.stat().st_mtime_ns + 10**9,) * 2)
    os.replace(same, ckpt)  # the same bytes in a new file with a new mtime: the run resumes
    out = test_tool.main(cli(MAPLE_TPT, work, ov))
    assert out['num_resumed'] == 5 and out['num_new'] == N - 5
    old, size = load_file(str(ckpt)), ckpt.stat().st_size
    save_maple(ckpt, 2)  # other tensors, same path, same size
    assert any(not torch.equal(old[k], v) for k, v in load_file(str(ckpt)).items()) and ckpt.stat().st_size == size
    with pytest.raises(ProvenanceError) as err:
        test_tool.main(cli(MAPLE_TPT, work, ov))
    assert isinstance(err.value, RuntimeError) and '--no-resume' in err.value.message
    log = (work / 'log.txt').read_text()  # 12. the error and its traceback are in the run's log
    assert err.value.what in log and 'Traceback (most recent call last)' in log and 'ProvenanceError' in log
    again = test_tool.main(cli(MAPLE_TPT, work, ov, '--no-resume'))
    assert again['num_resumed'] == 0 and again['num_new'] == N
    recorded = run_json(work)['files']['model.prompt_checkpoint']
    assert recorded['sha256'] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert recorded['path'] == str(ckpt.resolve()) and recorded['size'] == ckpt.stat().st_size


# ---------------------------------------------------------------- 2. a prototype bank of another source
def user_config(path, method, proxy_root):
    """The method's config with the proxy source set swapped for an image folder."""
    path.write_text(f"_base_ = ['{ROOT / f'configs/{method}/vit_b16_imagenet_r.py'}']\n"
                    f"proxy_data = dict(dataset=dict(_delete_=True, type='ImageFolder', root='{proxy_root}'), "
                    'num_workers=0)\n')
    return str(path)


def test_bank_of_another_source_is_refused_and_never_overwritten(test_tool, proto_tool, tmp_path, tiny_overrides):
    bank = tmp_path / 'bank.safetensors'
    ov = small(tiny_overrides, **{'model.prompt_checkpoint': None, 'prototypes.file': str(bank),
                                  'prototypes.dtype': 'float32'})
    proxy_b = make_image_folder(tmp_path / 'proxy_b', CLASSES, per_class=2, seed=5)
    cfg_a = user_config(tmp_path / 'a.py', 'promptsync', tiny_overrides['data.dataset.root'])
    cfg_b = user_config(tmp_path / 'b.py', 'promptsync', proxy_b)
    assert proto_tool.main([cfg_a, *options(ov)]) == bank
    fp_a, fp_b = (fingerprint(load_config(c, ov), 'prototypes') for c in (cfg_a, cfg_b))
    assert read_safetensors_metadata(bank, 'bank')['fingerprint'] == fp_a != fp_b
    same = test_tool.main(cli(cfg_a, tmp_path / 'same', ov, '--max-samples', '2'))  # the bank's own source: fine
    assert same['num_samples'] == 2 and run_json(tmp_path / 'same')['prototype_bank']['verified'] is True
    with pytest.raises(ProvenanceError) as err:
        test_tool.main(cli(cfg_b, tmp_path / 'other', ov, '--max-samples', '2'))
    assert 'tools/compute_prototypes.py' in err.value.message and 'proxy_data.dataset.root' in err.value.message
    assert not (tmp_path / 'other' / 'predictions.jsonl').exists()
    unverified = test_tool.main(cli(cfg_b, tmp_path / 'other', dict(ov, **{'prototypes.verify': False}),
                                    '--max-samples', '2'))
    assert unverified['num_samples'] == 2
    recorded = run_json(tmp_path / 'other')['prototype_bank']
    assert recorded['verified'] is False and recorded['fingerprint'] == fp_a and recorded['expected'] == fp_b
    # compute_prototypes never replaces a bank of another configuration, unless --no-resume
    before = bank.read_bytes()
    with pytest.raises(ProvenanceError) as err:
        proto_tool.main([cfg_b, *options(ov)])
    assert 'another configuration' in err.value.what and '--no-resume' in err.value.message
    assert bank.read_bytes() == before
    proto_tool.main([cfg_b, '--no-resume', *options(ov)])
    assert read_safetensors_metadata(bank, 'bank')['fingerprint'] == fp_b


# ---------------------------------------------------------------- 3. the smoke suite keeps off the demo bank
def test_smoke_suite_never_writes_the_demo_bank(tmp_path, monkeypatch):
    monkeypatch.setenv('PROMPTSYNC_CKPT', str(tmp_path / 'ckpt'))
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path / 'data'))
    demo = load_config(SHAPES_SYNC)
    demo_bank, demo_fp = demo.prototypes.file, fingerprint(demo, 'prototypes')
    assert demo_bank.startswith(str(tmp_path / 'ckpt'))

    def cells(suite_file):
        suite = load_config(ROOT / suite_file).suite
        first = next(iter(suite.datasets.values()))  # the suite's prepare step uses the first column
        for method in ('promptsync', 'promptalign'):
            entry = suite.methods[method]
            yield cell_config(str(ROOT / entry.config), dict(suite.cfg_options, **entry.get('cfg_options', {})),
                              dataset_overrides(first, method), 0, tmp_path / 'cells' / method / 'photo' / 'seed0')
    for cfg in cells('configs/suites/shapes_demo.py'):  # the demo's cells share the demo bank: the same source
        assert cfg.prototypes.file == demo_bank and fingerprint(cfg, 'prototypes') == demo_fp
    smoke = list(cells('configs/suites/shapes_smoke.py'))
    for cfg in smoke:  # another source (a smaller proxy set), so another file
        assert cfg.proxy_data.dataset.per_class == 5 and fingerprint(cfg, 'prototypes') != demo_fp
        assert cfg.prototypes.file != demo_bank
        assert Path(cfg.prototypes.file).resolve() != Path(demo_bank).resolve()
    assert smoke[0].prototypes.file == smoke[1].prototypes.file  # promptsync and promptalign: one smoke bank
    assert fingerprint(smoke[0], 'prototypes') == fingerprint(smoke[1], 'prototypes')


# ---------------------------------------------------------------- bugs found while writing these tests
def test_rewriting_the_same_prompt_checkpoint_keeps_its_hash(tmp_path):
    """The same tensors and metadata saved again must keep the hash that provenance records, or re-converting a
    checkpoint (or re-running a training) refuses every resume ('a checkpoint changed'); safetensors writes the
    metadata in hash-map order, so the header is rewritten sorted."""
    state = {'ctx': torch.arange(8.0).reshape(2, 4)}
    meta = dict(source='release.pth', dropped='{}', epochs='2', note='same')
    recorded = set()
    for k in range(8):
        path = save_prompt_checkpoint(state, tmp_path / 'ckpt.safetensors', meta)
        os.utime(path, ns=(10**18 + k * 10**9,) * 2)  # a distinct mtime: no cached digest is reused
        assert torch.equal(load_file(str(path))['ctx'], state['ctx'])
        fp, files = fingerprint_and_files({'model': {'prompt_checkpoint': str(path)}}, 'test')
        recorded.add((fp, files['model.prompt_checkpoint']['sha256']))
    assert len(recorded) == 1


# ---------------------------------------------------------------- 4. exact speed switches
def test_speed_switches_leave_every_fingerprint_alone():
    """Engine and shortcut switches compute the same numbers (tests/tta/test_fast_engine.py), so a run with them
    resumes a run without them and a prototype bank stays valid; a switch that changes the numbers does not."""
    cfg = load_config(str(ROOT / 'configs/shapes/promptsync.py'))
    fast = {'model.backbone.truncate_text': False, 'model.backbone.text_grad_checkpointing': True, 'model.image_chunk_size': 8,
            'tta.mode': 'reference', 'tta.batch_size': 4, 'tta.grad_views': 'all', 'tta.reuse_initial_text': False}
    other = load_config(str(ROOT / 'configs/shapes/promptsync.py'))
    other.merge_from_dict(fast)
    changed = load_config(str(ROOT / 'configs/shapes/promptsync.py'))
    changed.merge_from_dict({'tta.steps': 2, 'model.backbone.precision': 'amp_bf16'})
    for job in ('test', 'prototypes'):
        assert fingerprint(other, job) == fingerprint(cfg, job)
    assert fingerprint(changed, 'test') != fingerprint(cfg, 'test')
    assert fingerprint(changed, 'prototypes') != fingerprint(cfg, 'prototypes')
