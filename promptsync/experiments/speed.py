"""Speed of a TTA method in several execution modes, measured in one process on the same samples.

Modes (``--modes`` of ``tools/benchmark_speed.py``):

* ``reference`` — the plain per-sample loop: ``tta.mode='reference'`` and ``model.backbone.truncate_text=False``;
* ``exact`` — the exact shortcuts, one sample at a time: ``tta.mode='fast'``, ``tta.batch_size=1``;
* ``batched:B`` — the exact shortcuts on batches of ``B`` samples: ``tta.batch_size=B``, fed ``B`` at a time to
  ``method.process_batch``.

Each mode builds its own model and method from the config with its options (same seed, so the same random
weights under ``--random-init``) and runs the same samples: ``warmup`` of them first (untimed, whole batches),
then every sample once, timed per batch (``process_batch``; the views are made by this module and timed as
their own stage). The method reports its stages through ``method.timer`` (a :class:`StageTimer`). After the
timed pass, one batch runs again under a FLOP counter. Predictions and selected views are compared with the
``reference`` mode's.
"""
from __future__ import annotations

import gc
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import torch

from promptsync.datasets.view_dataset import collate_views
from promptsync.engine.resources import needs_prototypes
from promptsync.engine.runner import prepare_config, resolve_device
from promptsync.errors import ArgumentError
from promptsync.hooks import HookList, Progress, ProgressBarHook
from promptsync.models import build_model
from promptsync.registry import TTA_METHODS
from promptsync.tta.timing import StageTimer
from promptsync.tta.views import build_views
from promptsync.utils.config import load_config, lookup
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import SampleRNG, seed_everything

from .speed_bank import existing_bank, write_synthetic_bank
from .speed_inputs import Classes, benchmark_classes, build_dataset, dataset_items, shipped_classes, synthetic_items
from .speed_measure import PeakMemory, SelectionRecorder, compare_logits, count_flops, latency_stats, sync

logger = get_logger('speed')
REFERENCE = 'reference'
DEFAULT_MODES = 'reference,exact,batched:4'
BANK_IMAGES = 8  # images whose token statistics seed a synthetic bank
MODES_FIX = 'e.g. --modes reference,exact,batched:4,batched:8 (reference, exact, batched:B with B >= 1)'


@dataclass(frozen=True)
class Mode:
    name: str
    batch_size: int
    options: dict = field(default_factory=dict, hash=False, compare=False)


def parse_modes(text: str) -> list[Mode]:
    """``'reference,exact,batched:4'`` -> modes; anything else is an :class:`ArgumentError`."""
    modes: list[Mode] = []
    for part in [p.strip() for p in str(text).split(',')]:
        if part == REFERENCE:
            mode = Mode(part, 1, {'tta.mode': 'reference', 'model.backbone.truncate_text': False})
        elif part == 'exact':
            mode = Mode(part, 1, {'tta.mode': 'fast', 'tta.batch_size': 1})
        elif part.startswith('batched:'):
            size = part.split(':', 1)[1]
            if not size.isdigit() or int(size) < 1:
                raise ArgumentError(f"--modes: '{part}' needs a batch size B >= 1 (batched:B)", where='--modes',
                                    fix=MODES_FIX)
            mode = Mode(f'batched:{int(size)}', int(size), {'tta.mode': 'fast', 'tta.batch_size': int(size)})
        else:
            raise ArgumentError(f"--modes: unknown mode '{part}'", where='--modes', fix=MODES_FIX)
        if any(m.name == mode.name for m in modes):
            raise ArgumentError(f"--modes: '{mode.name}' is given twice", where='--modes', fix=MODES_FIX)
        modes.append(mode)
    return modes


@dataclass
class SpeedOptions:
    config: str
    modes: list[Mode]
    samples: int = 8
    warmup: int = 1
    views: int | None = None
    classes: int | None = None
    random_init: bool = False
    synthetic: bool = False
    device: str | None = None
    cfg_options: Mapping[str, Any] = field(default_factory=dict)
    peak_tflops: float | None = None
    atol: float = 1e-4
    progress: bool = True
    command: str = ''


@dataclass
class Shared:
    """What every mode uses: classes, samples, bank (the samples and a synthetic bank need the first model)."""
    classes: Classes
    dataset: Any
    items: list | None = None
    bank: str | None = None
    synthetic_bank: bool = False
    notes: list[str] = field(default_factory=list)


def _base_options(opts: SpeedOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if opts.views is not None:
        out['tta.views.n_views'] = opts.views
    if opts.random_init:
        out['model.backbone.pretrained'] = None
    if opts.device is not None:
        out['device'] = opts.device
    return out


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _views_of(views, item, seed: int) -> dict:
    return dict(views=views(item.image(), SampleRNG.for_sample(seed, item.index)), label=item.label,
                index=item.index, path=item.path)


def _inputs(shared: Shared, opts: SpeedOptions, model, views, tree: Mapping, seed: int, tmp: Path) -> None:
    """Samples and the bank, made once with the first mode's model (all modes share its seed and weights)."""
    if shared.items is None:
        n_cls = len(shared.classes.space)
        shared.items = (dataset_items(shared.dataset, opts.samples, n_cls) if shared.dataset is not None and
                        not opts.synthetic else synthetic_items(opts.samples, n_cls, seed,
                                                                model.backbone.preprocess_cfg['size']))
    if needs_prototypes(tree) and shared.bank is None:
        shared.bank = existing_bank(tree)
        if shared.bank is not None:
            shared.notes.append(f'prototype bank: {shared.bank} (used without checking its source: speed only)')
            return
        first = shared.items[:BANK_IMAGES]
        original = getattr(views, 'original_view', None)
        images = torch.stack([original(it.image()) if original else _views_of(views, it, seed)['views'][0]
                              for it in first])
        with torch.random.fork_rng(devices=[]):
            shared.bank = str(write_synthetic_bank(tmp / 'synthetic_bank.safetensors', model, images,
                                                   shared.classes.space, tree, seed))
        shared.synthetic_bank = True
        shared.notes.append(f'prototype bank: SYNTHETIC ({lookup(tree, "prototypes.file")} is not on disk): real '
                            'shapes, values from seeded noise')


def _progress(name: str, total: int, enabled: bool):
    runner = SimpleNamespace(progress={'test': Progress(total=total, desc=name)})
    bar = ProgressBarHook(disable=not enabled)
    bar.before_test_epoch(runner)
    return runner, bar


def run_mode(mode: Mode, opts: SpeedOptions, options: Mapping[str, Any], shared: Shared, tmp: Path) -> dict:
    cfg = load_config(opts.config, {**options, **mode.options})
    prepare_config(cfg, 'test')
    tree = cfg.to_dict()
    device = resolve_device(cfg.get('device', 'auto'))
    seed = int(cfg.get('seed', 0))
    seed_everything(seed)
    model = build_model(cfg.model, shared.classes.space, device)
    tta_cfg = dict(cfg.tta)
    views = build_views(tta_cfg.pop('views', None), model.backbone.preprocess_cfg)
    _inputs(shared, opts, model, views, tree, seed, tmp)
    recorder = SelectionRecorder()
    hooks = HookList(list(cfg.get('custom_hooks') or []) + [recorder])
    resources = {'prototypes': shared.bank} if needs_prototypes(tree) else {}
    method = TTA_METHODS.build(tta_cfg, default_args=dict(model=model, hooks=hooks, seed=seed, resources=resources))
    method.timer = StageTimer(enabled=True)
    items, size = shared.items, mode.batch_size
    memory = PeakMemory(device)
    memory.reset()
    baseline = memory.current_mb()  # model, prompts, bank and inputs: held before any sample runs
    try:
        warm = [items[i % len(items)] for i in range(math.ceil(opts.warmup / size) * size)] if opts.warmup else []
        for chunk in _chunks(warm, size):
            method.process_batch(collate_views([_views_of(views, it, seed) for it in chunk]))
        method.timer.reset()
        recorder.enabled = True
        stages = dict(load_image=0.0, views=0.0) if items[0].from_disk else dict(views=0.0)
        per_img, tta_s, logits, first = [], 0.0, {}, None
        runner, bar = _progress(f'{mode.name:>12}', len(items), opts.progress)
        for chunk in _chunks(items, size):
            made = []
            for it in chunk:
                t0 = time.perf_counter()
                img = it.image()
                t1 = time.perf_counter()
                made.append(dict(views=views(img, SampleRNG.for_sample(seed, it.index)), label=it.label,
                                 index=it.index, path=it.path))
                t2 = time.perf_counter()
                stages['views'] += t2 - t1
                if it.from_disk:
                    stages['load_image'] += t1 - t0
            batch = collate_views(made)
            first = first if first is not None else batch
            sync(device)
            start = time.perf_counter()
            results = method.process_batch(batch)
            sync(device)
            spent = time.perf_counter() - start
            per_img.append(spent / len(chunk))
            tta_s += spent
            logits.update({r.index: r.logits.detach().float().cpu() for r in results})
            runner.progress['test'].advance(len(chunk))
            bar.after_test_iter(runner, 0)
        bar.after_test_epoch(runner)
        recorder.enabled = False
        timed = dict(method.timer.snapshot())
        peak = memory.peak_mb()
        engine = (method.summary() or {}).get('engine')  # which engine ran, and why (EpisodicTTA)
        flops = count_flops(lambda: method.process_batch(first)) / len(first['index'])
    except torch.cuda.OutOfMemoryError as err:
        logger.warning('%s: out of memory (%s)', mode.name, str(err).splitlines()[0])
        empty = dict.fromkeys(('ms_per_img_median', 'ms_per_img_p95', 'ms_per_img_mean', 'img_per_s',
                               'img_per_s_with_views', 'stages_ms_per_img', 'gflop_per_img', 'ms_at_peak',
                               'achieved_fraction_of_peak', 'speedup_vs_reference', 'identical_predictions',
                               'max_abs_logit_diff', 'same_top1', 'same_selected_views'))
        return dict(empty, batch_size=size, options=dict(mode.options), peak_mem_mb=memory.peak_mb(),
                    peak_mem_kind=memory.kind, error=f'out of memory: {str(err).splitlines()[0]}')
    finally:
        del method, model
        gc.collect()
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    n = len(items)
    views_s = sum(stages.values())
    stages.update(timed)
    stages['other'] = max(0.0, tta_s - sum(timed.values()))
    v = int(first['views'].shape[1])
    return dict(
        batch_size=size, options=dict(mode.options), **latency_stats(per_img), img_per_s=n / tta_s,
        img_per_s_with_views=n / (tta_s + views_s), peak_mem_mb=peak, peak_mem_kind=memory.kind,
        baseline_mem_mb=baseline, adapt_mem_mb=peak - baseline,
        stages_ms_per_img={k: 1000.0 * s / n for k, s in stages.items()}, gflop_per_img=flops / 1e9,
        views=v, precision=model_precision(cfg), engine=engine, logits=logits,
        selected_views={str(i): s for i, s in sorted(recorder.selected.items())})


def model_precision(cfg) -> str:
    return str(lookup(cfg.to_dict(), 'model.backbone.precision') or 'amp')


def _add_peak(res: dict, peak_tflops: float | None) -> None:
    if peak_tflops and res.get('gflop_per_img') is not None:
        res['ms_at_peak'] = res['gflop_per_img'] / peak_tflops  # GFLOP / (TFLOP/s) = ms
        res['achieved_fraction_of_peak'] = res['ms_at_peak'] / res['ms_per_img_mean']
    else:
        res['ms_at_peak'] = res['achieved_fraction_of_peak'] = None


def _compare(modes: dict[str, dict], atol: float) -> None:
    ref = modes.get(REFERENCE)
    for name, res in modes.items():
        if 'error' in res:
            continue
        if ref is None or 'error' in ref:
            res.update(speedup_vs_reference=None, identical_predictions=None, max_abs_logit_diff=None,
                       same_top1=None, same_selected_views=None)
            continue
        cmp = compare_logits(ref['logits'], res['logits'])
        diff = cmp['max_abs_logit_diff']
        res.update(speedup_vs_reference=res['img_per_s'] / ref['img_per_s'], **cmp,
                   identical_predictions=bool(cmp['same_top1'] and diff is not None and diff <= atol),
                   same_selected_views=res['selected_views'] == ref['selected_views'])


def benchmark_speed(opts: SpeedOptions) -> dict:
    """Run every mode of ``opts`` and return the report (see ``tools/benchmark_speed.py`` for its layout)."""
    if opts.samples < 1 or opts.warmup < 0:
        raise ArgumentError(f'--samples must be >= 1 and --warmup >= 0 (got {opts.samples}, {opts.warmup})',
                            where='--samples/--warmup')
    options = {**_base_options(opts), **dict(opts.cfg_options)}
    cfg = load_config(opts.config, options)
    prepare_config(cfg, 'test')
    notes = []
    ckpt = lookup(cfg.to_dict(), 'model.prompt_checkpoint')
    if ckpt and not Path(str(ckpt)).is_file():
        options['model.prompt_checkpoint'] = None
        notes.append(f'prompt checkpoint {ckpt} is not on disk: the initial prompts are used (same cost)')
    if opts.random_init:
        notes.append('random backbone weights (--random-init): timings are real, predictions meaningless')
    ds_cfg = dict(cfg.data.dataset)
    names_only = opts.synthetic and shipped_classes(ds_cfg) is not None
    dataset = None if names_only else build_dataset(ds_cfg)
    synthetic = opts.synthetic or dataset is None
    if synthetic and not opts.synthetic:
        notes.append(f'the images of {ds_cfg.get("type")} are not on disk: synthetic images are used')
    classes = benchmark_classes(ds_cfg, opts.classes, dataset)
    if classes.generated:
        notes.append(f'class names: {classes.source}')
    device = resolve_device(cfg.get('device', 'auto'))
    precision = model_precision(cfg)
    if precision not in ('fp32', 'amp') or (precision == 'amp' and device.type == 'cuda'):
        notes.append(f'precision {precision}: the modes run other kernels and shapes, so their logits differ by '
                     f'rounding; identical_predictions asks for fp32 logits within --atol={opts.atol:g}')
    opts.synthetic = synthetic
    shared = Shared(classes, dataset, notes=notes)
    modes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix='promptsync-speed-') as tmp:
        for mode in opts.modes:
            logger.info('mode %s (batch size %d)', mode.name, mode.batch_size)
            modes[mode.name] = run_mode(mode, opts, options, shared, Path(tmp))
    _compare(modes, opts.atol)
    for res in modes.values():
        if 'error' not in res:
            _add_peak(res, opts.peak_tflops)
            res['top1'] = [int(res['logits'][i].argmax()) for i in sorted(res['logits'])]
        res.pop('logits', None)
    done = [r for r in modes.values() if 'error' not in r]
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    return dict(
        config=str(opts.config), command=opts.command, device=f'{device} ({name})', torch=torch.__version__,
        method=str(cfg.tta.get('type')), precision=model_precision(cfg), samples=len(shared.items or []),
        warmup=opts.warmup, views=done[0]['views'] if done else opts.views, classes=len(classes.space),
        classes_source=classes.source, generated_class_names=classes.generated, synthetic_images=synthetic,
        synthetic_prototypes=shared.synthetic_bank, prototypes=shared.bank and ('synthetic' if shared.synthetic_bank
                                                                               else shared.bank),
        peak_tflops=opts.peak_tflops, random_init=opts.random_init, seed=int(cfg.get('seed', 0)), atol=opts.atol,
        notes=shared.notes, modes=modes)

