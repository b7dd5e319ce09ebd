"""Unreadable images (truncated PNG/JPEG, zero-byte file, text renamed .jpg) are skipped, reported and counted by
ViewDataset + collate_views, tools/test.py (TTARunner), compute_prototypes and the prompt trainer."""
import io
import json
import math
import shutil
import types
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image, ImageFile
from safetensors import safe_open
from torch.utils.data import DataLoader

from promptsync import engine as proto_api
from promptsync import engine as train_api
from promptsync.engine.shards import select_indices
from promptsync.datasets import ImageFolder, ViewDataset
from promptsync.datasets.fake import make_image_folder
from promptsync.datasets.loading import load_rgb
from promptsync.datasets.view_dataset import collate_views
from promptsync.training import PromptTrainer
from promptsync.evaluation import read_records
from promptsync.prototypes import BankAccumulator, PrototypeBank
from promptsync.engine import Runner
from promptsync.hooks import Hook, Progress, ProgressBarHook
from promptsync.utils.config import load_config

from ..conftest import CLASSES, TINY, interrupt
from ..tools.helpers import ROOT, load_tool, options

ZS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')
LAYERS = (0, 2)
# name in its class folder -> (index in the sorted ImageFolder listing, expected error text)
BAD = {'cat/0001_truncated.png': (2, 'truncated'), 'dog/truncated.jpg': (7, 'truncated'),
       'golden_retriever/0000_empty.jpg': (9, 'cannot identify'), 'tabby_cat/notes.jpg': (15, 'cannot identify')}
BAD_INDICES = sorted(i for i, _ in BAD.values())
GOOD_INDICES = [i for i in range(16) if i not in BAD_INDICES]


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def noisy_bytes(fmt: str) -> bytes:
    arr = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def make_broken_folder(root):
    """The 12 images of make_image_folder(CLASSES, per_class=3) plus 4 unreadable files among them."""
    make_image_folder(root, CLASSES, per_class=3)
    png, jpg = noisy_bytes('PNG'), noisy_bytes('JPEG')
    (root / 'cat/0001_truncated.png').write_bytes(png[:len(png) // 2])
    (root / 'dog/truncated.jpg').write_bytes(jpg[:len(jpg) // 2])
    (root / 'golden_retriever/0000_empty.jpg').write_bytes(b'')
    (root / 'tabby_cat/notes.jpg').write_text('these are notes, not a JPEG\n')
    return root


def bad_paths(root):
    return [str(root / name) for name, _ in sorted(BAD.items(), key=lambda kv: kv[1][0])]


@pytest.fixture(scope='module')
def broken(tmp_path_factory):
    return make_broken_folder(tmp_path_factory.mktemp('broken'))


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('clean'), CLASSES, per_class=3)


def test_fixture_files_are_what_they_claim(broken):
    ds = ImageFolder(str(broken))
    assert len(ds) == 16
    for name, (index, error) in BAD.items():
        assert ds[index].path == str(broken / name)
        with pytest.raises(OSError, match=error):  # PIL refuses truncated data (LOAD_TRUNCATED_IMAGES is off)
            load_rgb(ds[index].path)
    for index in GOOD_INDICES:
        assert load_rgb(ds[index].path).mode == 'RGB'
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_view_dataset_markers_and_collate(broken):
    ds = ImageFolder(str(broken))
    view = lambda img, rng: torch.zeros(1, 3, 4, 4)  # noqa: E731
    with pytest.raises(OSError, match='0001_truncated.png'):  # the default still raises, naming the file
        ViewDataset(ds, view, 0)[2]
    skipping = ViewDataset(ds, view, 0, skip_unreadable=True)
    marker = skipping[2]
    assert set(marker) == {'skipped'} and marker['skipped']['index'] == 2
    assert marker['skipped']['path'] == str(broken / 'cat/0001_truncated.png')
    assert 'truncated' in marker['skipped']['error'] and not marker['skipped']['error'].startswith('cannot read')
    batches = list(DataLoader(skipping, batch_size=3, collate_fn=collate_views))
    got = [int(i) for b in batches for i in b['index']]
    assert got == GOOD_INDICES
    skipped = [r for b in batches for r in b['skipped']]
    assert [r['index'] for r in skipped] == BAD_INDICES and [r['path'] for r in skipped] == bad_paths(broken)
    for r in skipped:
        assert BAD[r['path'][len(str(broken)) + 1:]][1] in r['error']
    assert batches[-1]['skipped'][0]['index'] == 15 and len(batches[-1]['index']) == 0  # a batch of no sample
    assert batches[-1]['label'].dtype == torch.long and batches[-1]['path'] == []
    assert all(b['views'].shape[0] == len(b['index']) for b in batches)


# ---------------------------------------------------------------- tools/test.py (TTARunner)
@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


def run(test_tool, work_dir, overrides, root, *extra):
    ov = dict(overrides, **{'data.dataset.root': str(root)})
    return test_tool.main([ZS, '--work-dir', str(work_dir), *extra, *options(ov), 'default_hooks.progress.disable=True'])


def by_index(path):
    return sorted(read_records(path), key=lambda r: r['index'])


def recomputed(records, n_classes=4):
    """Every default metric, recomputed by hand from the prediction records."""
    n = len(records)
    per_class, bins = {}, {}
    for r in records:
        per_class.setdefault(r['label'], []).append(r['correct'])
        bins.setdefault(max(0, math.ceil(r['confidence'] * 15) - 1), []).append(r)

    def concentration(values):
        shares = [k / n for k in Counter(values).values()]
        return -sum(p * math.log(p) for p in shares) / math.log(n_classes), 100.0 * max(shares)
    pred_entropy, pred_share = concentration([r['pred'] for r in records])
    label_entropy, label_share = concentration([r['label'] for r in records])
    return dict(top1=100.0 * sum(r['correct'] for r in records) / n,
                top5=100.0 * sum(r['label'] in r['topk'][:5] for r in records) / n,
                mean_class_top1=100.0 * sum(sum(v) / len(v) for v in per_class.values()) / len(per_class),
                ece=100.0 * sum(abs(sum(x['correct'] for x in v) - sum(x['confidence'] for x in v))
                                for v in bins.values()) / n, ece_excluded=0,
                pred_entropy=pred_entropy, pred_max_share=pred_share, label_entropy=label_entropy,
                label_max_share=label_share)


def test_test_tool_skips_counts_and_reports(test_tool, tmp_path, tiny_overrides, broken, clean, capsys):
    out = run(test_tool, tmp_path / 'b1', dict(tiny_overrides, **{'data.batch_size': 1}), broken)
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / 'b1/metrics.json').read_text())
    assert metrics['num_skipped'] == out['num_skipped'] == 4 and metrics['num_samples'] == 12
    assert metrics['num_selected'] == 16 and metrics['skipped_paths'] == bad_paths(broken)
    assert 'predicted images' in metrics['metrics_over']
    lines = [json.loads(x) for x in (tmp_path / 'b1/skipped.jsonl').read_text().splitlines()]
    assert [(r['index'], r['path']) for r in lines] == list(zip(BAD_INDICES, bad_paths(broken)))
    assert all(BAD[r['path'][len(str(broken)) + 1:]][1] in r['error'] for r in lines)
    records = by_index(tmp_path / 'b1/predictions.jsonl')
    assert [r['index'] for r in records] == GOOD_INDICES  # every readable image was predicted
    assert metrics['metrics'] == pytest.approx(recomputed(records))
    assert 'skipped' in printed.splitlines()[0] and 'skipped' in (tmp_path / 'b1/results.md').read_text()
    log = (tmp_path / 'b1/log.txt').read_text()
    assert f'skipping unreadable image {bad_paths(broken)[0]}' in log and '4 of 16 images could not be read' in log
    # the predictions of the readable images are those of a folder without the broken files
    ref = run(test_tool, tmp_path / 'clean', tiny_overrides, clean)
    assert 'skipped' not in capsys.readouterr().out.splitlines()[0]
    assert ref['num_skipped'] == 0 and ref['skipped_paths'] == [] and ref['metrics'] == out['metrics']
    strip = lambda r: {k: v for k, v in r.items() if k not in ('index', 'path')}  # noqa: E731
    assert [strip(r) for r in records] == [strip(r) for r in by_index(tmp_path / 'clean/predictions.jsonl')]
    assert (tmp_path / 'clean/skipped.jsonl').read_text() == ''
    # batching does not change what is skipped or predicted
    run(test_tool, tmp_path / 'b4', dict(tiny_overrides, **{'data.batch_size': 4}), broken)
    assert by_index(tmp_path / 'b4/predictions.jsonl') == records
    assert read_records(tmp_path / 'b4/skipped.jsonl') == lines


def test_resume_retries_skipped_images_and_counts_the_final_state(test_tool, tmp_path, tiny_overrides):
    root = make_broken_folder(tmp_path / 'data')
    ov = dict(tiny_overrides, **{'data.batch_size': 3})
    first = run(test_tool, tmp_path / 'w', ov, root, '--max-samples', '10')  # a partial run
    assert first['num_selected'] == 10 and first['num_samples'] + first['num_skipped'] == 10
    full = run(test_tool, tmp_path / 'w', ov, root)
    assert full['num_resumed'] == first['num_samples'] and full['num_skipped'] == 4
    assert full['num_new'] == 12 - first['num_samples']  # the skipped images were retried, not counted twice
    skipped_file = tmp_path / 'w/skipped.jsonl'
    assert [r['index'] for r in read_records(skipped_file)] == BAD_INDICES  # one line per image
    # fix one file: the re-run predicts it, and only the others stay skipped
    shutil.copy(root / 'cat/0000.png', root / 'golden_retriever/0000_empty.jpg')
    with open(skipped_file, 'a') as fh:  # an interrupted run's torn last line
        fh.write('{"index": 2, "pa')
    fixed = run(test_tool, tmp_path / 'w', ov, root)
    assert fixed['num_resumed'] == 12 and fixed['num_new'] == 1 and fixed['num_skipped'] == 3
    assert fixed['num_samples'] == 13 and str(root / 'golden_retriever/0000_empty.jpg') not in fixed['skipped_paths']
    assert [r['index'] for r in read_records(skipped_file)] == [2, 7, 15]
    records = by_index(tmp_path / 'w/predictions.jsonl')
    assert [r['index'] for r in records] == sorted(GOOD_INDICES + [9])
    assert fixed['metrics'] == pytest.approx(recomputed(records))
    # nothing changed: the skipped images are retried again and still counted once
    again = run(test_tool, tmp_path / 'w', ov, root)
    assert again['num_new'] == 0 and again['num_skipped'] == 3 and again['metrics'] == fixed['metrics']
    assert [r['index'] for r in read_records(skipped_file)] == [2, 7, 15]
    # --no-resume starts over: the old list goes with the old predictions
    fresh = run(test_tool, tmp_path / 'w', ov, root, '--no-resume', '--max-samples', '6')
    still_bad = sorted(set(select_indices(16, 6)) & {2, 7, 15})
    assert still_bad  # the subset holds an unreadable image
    assert fresh['num_resumed'] == 0 and fresh['num_selected'] == 6 and fresh['num_skipped'] == len(still_bad)
    assert [r['index'] for r in read_records(skipped_file)] == still_bad


def test_progress_bar_counts_skipped_images(tmp_path, tiny_overrides, broken):
    """The loop's progress counts predicted *and* skipped images, shows the skipped count and the running top-1 over
    the predicted ones; the bar draws exactly that."""
    seen = []

    class Snapshot(Hook):
        def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            p = runner.progress['test']
            seen.append((p.done, dict(p.postfix)))
    cfg = load_config(ZS, dict(tiny_overrides, **{'data.dataset.root': str(broken), 'data.batch_size': 1}))
    cfg.work_dir = str(tmp_path / 'w')
    out = Runner(cfg, hooks=[Snapshot()]).test()
    assert [d for d, _ in seen] == list(range(1, 17))  # one image per batch, readable or not
    assert seen[-1][1]['skipped'] == 4 and seen[-1][1]['top1'] == f"{out['metrics']['top1']:.2f}"
    assert 'skipped' not in seen[0][1]  # the first image is readable
    runner = types.SimpleNamespace(progress={'test': Progress(total=10, done=2)})
    hook = ProgressBarHook()  # enabled: a disabled tqdm counts nothing
    hook.before_test_epoch(runner)
    assert hook.bars['test'].n == 2
    runner.progress['test'].advance(3, top1='75.00', skipped=2)
    hook.after_test_iter(runner, 0)
    bar = hook.bars['test']
    assert bar.n == 5 and 'skipped=2' in bar.postfix and 'top1=75.00' in bar.postfix
    hook.after_test_epoch(runner)
    assert 'test' not in hook.bars


# ---------------------------------------------------------------- compute_prototypes
def proto_cfg(folder, out, **proto):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
        proxy_data=dict(dataset=dict(type='ImageFolder', root=str(folder)), batch_size=5, num_workers=0),
        prototypes=dict(dict(file=str(out), layers=LAYERS, per_class=True, token_stats='per_token'), **proto),
        seed=0, device='cpu', log_level='WARNING'))


def assert_same_bank(a, b):
    assert torch.equal(a.counts, b.counts)
    for lay in LAYERS:
        assert torch.allclose(a.mean[lay], b.mean[lay], atol=1e-5)
        assert torch.allclose(a.var[lay], b.var[lay], atol=1e-5)
    assert torch.allclose(a.visual, b.visual, atol=1e-5)


def test_prototypes_skip_count_and_resume(tmp_path, broken, clean, monkeypatch):
    ref = PrototypeBank.load(proto_api.compute_prototypes(proto_cfg(clean, tmp_path / 'clean.safetensors')))
    full = PrototypeBank.load(proto_api.compute_prototypes(proto_cfg(broken, tmp_path / 'full.safetensors')))
    assert_same_bank(full, ref)  # the statistics are those of the readable images
    assert full.counts.tolist() == [3, 3, 3, 3]
    meta = full.metadata
    assert meta['images'] == '12' and meta['skipped_images'] == '4'
    assert json.loads(meta['skipped_paths']) == bad_paths(broken)
    assert ref.metadata['skipped_images'] == '0' and json.loads(ref.metadata['skipped_paths']) == []
    # interrupted after two batches of 5 (indices 0-9, of which 2, 7 and 9 unreadable), then resumed
    cfg = proto_cfg(broken, tmp_path / 'r.safetensors', save_every=1)
    restore = interrupt(monkeypatch, BankAccumulator, 'update', lambda n, *a: n == 3)
    with pytest.raises(KeyboardInterrupt):
        proto_api.compute_prototypes(cfg)
    partial = tmp_path / 'r.safetensors.partial.safetensors'
    with safe_open(str(partial), framework='pt') as fh:
        pmeta = fh.metadata()
    assert pmeta['processed'] == '10' and pmeta['skipped'] == '3'  # positions consumed, not images read
    restore()
    resumed = PrototypeBank.load(proto_api.compute_prototypes(cfg))
    assert_same_bank(resumed, full)
    assert resumed.metadata['images'] == '12' and resumed.metadata['skipped_images'] == '4'
    assert json.loads(resumed.metadata['skipped_paths']) == bad_paths(broken)


def test_prototypes_with_no_readable_image_say_so(tmp_path):
    (tmp_path / 'data/a').mkdir(parents=True)
    (tmp_path / 'data/a/x.jpg').write_bytes(b'')
    with pytest.raises(RuntimeError, match=r'none of the 1 proxy images could be read \(first: .*x\.jpg'):
        proto_api.compute_prototypes(proto_cfg(tmp_path / 'data', tmp_path / 'p.safetensors'))


# ---------------------------------------------------------------- the prompt trainer
def train_cfg(root, work_dir, epochs=2):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
        train_data=dict(dataset=dict(type='ImageFolder', root=str(root)), num_shots=None, batch_size=4,
                        num_workers=0),
        val_data=dict(dataset=dict(type='ImageFolder', root=str(root)), max_samples=None),
        trainer=dict(type='PromptTrainer', epochs=epochs, optimizer=dict(type='AdamW', lr=0.05), warmup_epochs=1,
                     log_interval=0),
        seed=0, device='cpu', work_dir=str(work_dir), log_level='WARNING'))


def test_trainer_skips_counts_and_resumes(tmp_path, broken, clean, monkeypatch):
    result = train_api.fit_prompts(train_cfg(broken, tmp_path / 'full'))
    log = [json.loads(x) for x in (tmp_path / 'full/train_log.jsonl').read_text().splitlines()]
    assert len(log) == 2
    for rec in log:
        assert rec['images'] == 12 and rec['skipped'] == 4 and rec['val_skipped'] == 4
        assert sorted(set(rec['skipped_paths'])) == sorted(bad_paths(broken)) and len(rec['skipped_paths']) == 8
    with safe_open(str(result.checkpoint), framework='pt') as fh:
        meta = fh.metadata()
    assert meta['skipped_train_images'] == '4' and meta['skipped_val_images'] == '4'
    assert json.loads(meta['skipped_paths']) == sorted(bad_paths(broken)) * 2
    assert sorted(result.summary['unreadable']['train']) == sorted(bad_paths(broken))
    # validation accuracy is over the readable images only (equal to that on a folder without the broken files)
    trainer = result.trainer
    on_broken = trainer.evaluate(ImageFolder(str(broken)), list(range(16)))
    assert len(trainer.last_val_skipped) == 4
    assert on_broken == trainer.evaluate(ImageFolder(str(clean)), list(range(12)))
    assert on_broken == result.summary['best_val_acc']  # the kept (best-validation) prompts
    # interrupted in epoch 2 and resumed: the unreadable files of epoch 1 are kept with the resume state
    restore = interrupt(monkeypatch, PromptTrainer, 'train_epoch', lambda n, dataset, indices, epoch: epoch == 1)
    with pytest.raises(KeyboardInterrupt):
        train_api.fit_prompts(train_cfg(broken, tmp_path / 'cut'))
    restore()
    resumed = train_api.fit_prompts(train_cfg(broken, tmp_path / 'cut'))
    assert resumed.trainer.unreadable == result.trainer.unreadable
    cut_log = [json.loads(x) for x in (tmp_path / 'cut/train_log.jsonl').read_text().splitlines()]
    strip = lambda r: {k: v for k, v in r.items() if k != 'seconds'}  # noqa: E731
    assert [strip(r) for r in cut_log] == [strip(r) for r in log]


def test_trainer_with_no_readable_training_image_says_so(tmp_path):
    (tmp_path / 'data/a').mkdir(parents=True)
    (tmp_path / 'data/b').mkdir(parents=True)
    (tmp_path / 'data/a/x.jpg').write_bytes(b'')
    (tmp_path / 'data/b/y.jpg').write_text('text')
    cfg = train_cfg(tmp_path / 'data', tmp_path / 'w')
    cfg.val_data = None
    with pytest.raises(RuntimeError, match=r'none of the 2 training images of epoch 1 could be read \(first: '):
        train_api.fit_prompts(cfg)
