#!/usr/bin/env python
"""Measure the speed of a TTA config in several execution modes, in one run, on the same samples.

    python tools/benchmark_speed.py CONFIG [--modes reference,exact,batched:4] [--samples 8] [--warmup 1]
        [--views V] [--classes C] [--random-init] [--synthetic] [--device D] [--peak-tflops 989]
        [--atol 1e-4] [--out DIR] [--no-progress] [--cfg-options KEY=VALUE ...] [--debug]

Modes: 'reference' (the plain per-sample loop: tta.mode=reference, model.backbone.truncate_text=False), 'exact'
(the exact shortcuts, one sample at a time: tta.batch_size=1) and 'batched:B' (B samples per process_batch:
tta.batch_size=B). Each mode builds its own model and method from the config (same seed) and runs the same
samples: --warmup samples first (untimed, rounded up to whole batches), then --samples timed.

Per mode: per-image latency (median, p95) and throughput of process_batch, peak memory (CUDA: max allocated;
CPU: the process's peak RSS), time per stage (the tool's views generation, then the method's stages), FLOPs of
one image (forward + backward, FlopCounterMode) and, with --peak-tflops, the time they take at the device's peak
and the achieved fraction of it; speedup and prediction agreement against the 'reference' mode (same top-1 on
every sample and fp32 logits within --atol; same selected views).

Inputs: --classes C takes the first C classes of the config's dataset, named from its shipped data files;
--synthetic uses seeded random images of the backbone's input size (also when the dataset's images are not on
disk); --random-init sets model.backbone.pretrained=None (no weights needed). A method that reads a prototype
bank gets the config's bank file when it exists, else a synthetic bank of the right shapes (said in the report).

Writes <out>/speed.json and <out>/speed.md (default out: work_dirs/speed/<config folder>/<config name>) and
prints the table. JSON: config, command, device, torch, samples, views, classes, synthetic_images,
synthetic_prototypes, peak_tflops, ..., modes.<name>.{ms_per_img_median, ms_per_img_p95, img_per_s,
peak_mem_mb, stages_ms_per_img, gflop_per_img, ms_at_peak, achieved_fraction_of_peak, speedup_vs_reference,
identical_predictions, max_abs_logit_diff, same_selected_views, same_top1, top1, selected_views, ...}.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.experiments.speed import DEFAULT_MODES, SpeedOptions, benchmark_speed, parse_modes  # noqa: E402
from promptsync.experiments.speed_report import format_report, write_report  # noqa: E402
from promptsync.utils.cli import add_cfg_options, base_parser, number_arg, positive_int, run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = base_parser(__doc__)
    p.add_argument('config', help='method config file, e.g. configs/promptsync/vit_b16_imagenet_r.py')
    p.add_argument('--modes', default=DEFAULT_MODES, help=f'comma-separated modes (default {DEFAULT_MODES})')
    p.add_argument('--samples', type=positive_int, default=8, help='timed samples per mode (default 8)')
    p.add_argument('--warmup', type=number_arg(int, 0), default=1,
                   help='untimed samples per mode before timing, rounded up to whole batches (default 1)')
    p.add_argument('--views', type=positive_int, help='views per sample (sets tta.views.n_views)')
    p.add_argument('--classes', type=positive_int, help="the first C classes of the config's dataset (default all)")
    p.add_argument('--random-init', action='store_true', help='random backbone weights (model.backbone.pretrained=None)')
    p.add_argument('--synthetic', action='store_true', help='seeded random images instead of the dataset\'s')
    p.add_argument('--device', help="'cpu', 'cuda', 'cuda:1' (default: the config's device)")
    p.add_argument('--peak-tflops', type=number_arg(float, 0, above=True),
                   help="the device's peak TFLOP/s for the run's precision, e.g. 989 (H200, bf16 dense)")
    p.add_argument('--atol', type=number_arg(float, 0, above=True), default=1e-4,
                   help='largest fp32 logit difference to the reference mode that counts as identical (default 1e-4)')
    p.add_argument('--out', help='output folder (default: work_dirs/speed/<config folder>/<config name>)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_cfg_options(p, '"model.backbone.precision=amp_bf16" "tta.steps=2"')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    modes = parse_modes(args.modes)
    opts = SpeedOptions(config=args.config, modes=modes, samples=args.samples, warmup=args.warmup, views=args.views,
                        classes=args.classes, random_init=args.random_init, synthetic=args.synthetic,
                        device=args.device, cfg_options=args.cfg_options, peak_tflops=args.peak_tflops,
                        atol=args.atol, progress=not args.no_progress,
                        command=shlex.join(['python', 'tools/benchmark_speed.py', *argv]))
    report = benchmark_speed(opts)
    source = Path(args.config)
    out = Path(args.out) if args.out else Path('work_dirs') / 'speed' / source.parent.name / source.stem
    json_path, md_path = write_report(report, out)
    print(format_report(report))
    print(f'wrote {json_path} and {md_path}')
    return report


if __name__ == '__main__':
    sys.exit(run_cli(main))
