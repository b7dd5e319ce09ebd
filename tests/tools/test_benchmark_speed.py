"""tools/benchmark_speed.py: the report's layout on the tiny models (no timing value is asserted), and its errors."""
import json
import math

import pytest

from promptsync.errors import ArgumentError
from promptsync.experiments.speed import parse_modes
from promptsync.experiments.speed_inputs import benchmark_classes
from promptsync.experiments.speed_measure import PeakMemory

from .helpers import ROOT, load_tool, options

MODE_KEYS = ('ms_per_img_median', 'ms_per_img_p95', 'img_per_s', 'peak_mem_mb', 'stages_ms_per_img',
             'gflop_per_img', 'speedup_vs_reference', 'identical_predictions', 'max_abs_logit_diff',
             'same_selected_views')
TOP_KEYS = ('config', 'device', 'torch', 'samples', 'views', 'classes', 'synthetic_images', 'synthetic_prototypes',
            'peak_tflops', 'command', 'modes')
POSITIVE = ('ms_per_img_median', 'ms_per_img_p95', 'img_per_s', 'peak_mem_mb', 'gflop_per_img',
            'speedup_vs_reference', 'ms_at_peak', 'achieved_fraction_of_peak')


@pytest.fixture(scope='module')
def tool():
    return load_tool('benchmark_speed')


def table_rows(md: str) -> list[str]:
    """The data rows of the first markdown table."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('| mode '))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append(line)
    return rows


def check_report(out_dir, modes, **expected):
    report = json.loads((out_dir / 'speed.json').read_text())
    assert all(k in report for k in TOP_KEYS)
    assert list(report['modes']) == modes
    for key, value in expected.items():
        assert report[key] == value, key
    for name, r in report['modes'].items():
        assert 'error' not in r and all(k in r for k in MODE_KEYS), name
        for key in POSITIVE if report['peak_tflops'] else POSITIVE[:-2]:
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, (name, key)
        assert r['ms_per_img_p95'] >= r['ms_per_img_median']
        stages = r['stages_ms_per_img']
        assert {'views', 'vision_forward', 'text_forward', 'backward', 'predict'} <= set(stages)
        assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in stages.values())
        # the modes are exact: the same top-1, logits and selected views as the reference loop
        assert r['identical_predictions'] is True and r['same_selected_views'] is True, name
        assert 0 <= r['max_abs_logit_diff'] <= 1e-4
        assert len(r['selected_views']) == report['samples'] and len(r['top1']) == report['samples']
    assert len(table_rows((out_dir / 'speed.md').read_text())) == len(modes)
    return report


def test_promptsync_modes_with_a_synthetic_bank(tool, tmp_path, capsys):
    out = tmp_path / 'speed'
    tool.main([str(ROOT / 'configs/shapes/promptsync.py'), '--samples', '2', '--views', '4', '--warmup', '1',
               '--synthetic', '--modes', 'reference,exact,batched:2', '--peak-tflops', '0.5', '--no-progress',
               '--out', str(out), '--cfg-options', f'prototypes.file={tmp_path / "no_bank.safetensors"}'])
    report = check_report(out, ['reference', 'exact', 'batched:2'], samples=2, views=4, classes=20,
                          synthetic_images=True, synthetic_prototypes=True, peak_tflops=0.5)
    assert report['modes']['reference']['speedup_vs_reference'] == 1.0
    assert report['modes']['batched:2']['batch_size'] == 2
    printed = capsys.readouterr().out
    assert len(table_rows(printed)) == 3 and 'SYNTHETIC' in printed


def test_tpt_on_dataset_images(tool, tmp_path, tiny_overrides):
    """Real images (a generated folder, classes from its folders) and the tiny random backbone of a ViT-B/16
    config."""
    out = tmp_path / 'speed'
    tool.main([str(ROOT / 'configs/tpt/vit_b16_imagenet_r.py'), '--samples', '3', '--views', '4', '--random-init',
               '--modes', 'reference,exact,batched:2', '--classes', '3', '--no-progress', '--out', str(out),
               *options(tiny_overrides)])
    report = check_report(out, ['reference', 'exact', 'batched:2'], samples=3, views=4, classes=3,
                          synthetic_images=False, synthetic_prototypes=False, peak_tflops=None)
    assert 'load_image' in report['modes']['exact']['stages_ms_per_img']
    assert report['modes']['exact']['ms_at_peak'] is None


@pytest.mark.parametrize('modes, message', [
    ('batched:0', "'batched:0' needs a batch size B >= 1"),
    ('reference,fastest', "unknown mode 'fastest'"),
    ('exact,exact', "'exact' is given twice"),
])
def test_bad_modes_are_clear_errors(tool, capsys, modes, message):
    code = tool.run_cli(tool.main, [str(ROOT / 'configs/shapes/tpt.py'), '--modes', modes])
    err = capsys.readouterr().err
    assert code == 2 and message in err and 'batched:B' in err
    with pytest.raises(ArgumentError):
        parse_modes(modes)


def test_more_classes_than_the_dataset_has(tool, capsys):
    code = tool.run_cli(tool.main, [str(ROOT / 'configs/shapes/tpt.py'), '--classes', '21', '--synthetic'])
    err = capsys.readouterr().err
    assert code == 2 and '--classes 21' in err and 'only 20 classes' in err


def test_class_names_come_from_the_data_files():
    classes = benchmark_classes(dict(type='ImageNetR', root='/nonexistent'), 200)
    assert len(classes.space) == 200 and classes.space.ids[0] == 'n01443537' and not classes.generated
    assert 'imagenet_r_indices.txt' in classes.source
    assert len(benchmark_classes(dict(type='ImageNet', root='/nonexistent'), 1000).space) == 1000
    pets = benchmark_classes(dict(type='OxfordPets', root='/nonexistent'), None)
    assert len(pets.space) == 37
    made_up = benchmark_classes(dict(type='ImageFolder', root='/nonexistent'), 5)
    assert made_up.generated and made_up.space.names[4] == 'class 4'
    with pytest.raises(ArgumentError, match='--classes'):
        benchmark_classes(dict(type='ImageFolder', root='/nonexistent'), None)


def test_cpu_peak_memory_is_read():
    mem = PeakMemory('cpu')
    mem.reset()
    assert mem.peak_mb() > 0


def test_a_mode_out_of_memory_is_recorded_and_the_others_go_on(tool, tmp_path, monkeypatch):
    import torch

    from promptsync.experiments import speed
    calls = []

    def flops_then_oom(fn):
        calls.append(1)
        if len(calls) == 2:  # the second mode
            raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 80.00 GiB')
        return 1
    monkeypatch.setattr(speed, 'count_flops', flops_then_oom)
    out = tmp_path / 'speed'
    tool.main([str(ROOT / 'configs/shapes/tpt.py'), '--samples', '1', '--views', '2', '--warmup', '0', '--synthetic',
               '--modes', 'reference,batched:2', '--no-progress', '--out', str(out)])
    report = json.loads((out / 'speed.json').read_text())
    oom = report['modes']['batched:2']
    assert oom['error'].startswith('out of memory') and oom['peak_mem_mb'] > 0
    assert all(k in oom for k in MODE_KEYS) and oom['identical_predictions'] is None
    assert report['modes']['reference']['identical_predictions'] is True
    rows = table_rows((out / 'speed.md').read_text())
    assert len(rows) == 2 and 'out of memory' in rows[1]
