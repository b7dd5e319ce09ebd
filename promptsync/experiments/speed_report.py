"""The speed report as markdown (one row per mode, then the stage breakdown) and its files (speed.json, speed.md)."""
from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from promptsync.engine.shards import write_json


def _num(value, fmt: str) -> str:
    return '-' if value is None else format(value, fmt)


def _flag(value) -> str:
    return '-' if value is None else ('yes' if value else 'NO')


def mode_table(report: dict) -> str:
    rows = []
    for name, r in report['modes'].items():
        if 'error' in r:
            rows.append([name, r['batch_size'], r['error'][:60]] + ['-'] * 11 + [_num(r.get('peak_mem_mb'), '.0f')])
            continue
        frac = r.get('achieved_fraction_of_peak')
        rows.append([name, r['batch_size'], _num(r['ms_per_img_median'], '.2f'), _num(r['ms_per_img_p95'], '.2f'),
                     _num(r['img_per_s'], '.2f'), _num(r['img_per_s_with_views'], '.2f'),
                     _num(r['speedup_vs_reference'], '.2f'), _num(r['gflop_per_img'], '.2f'),
                     _num(r.get('ms_at_peak'), '.3f'), '-' if frac is None else f'{100 * frac:.1f}',
                     _flag(r['identical_predictions']), _num(r['max_abs_logit_diff'], '.2e'),
                     _flag(r['same_selected_views']), _flag(r['same_top1']), _num(r['peak_mem_mb'], '.0f')])
    headers = ['mode', 'B', 'ms/img median', 'ms/img p95', 'img/s', 'img/s incl. views', 'speedup', 'GFLOP/img',
               'ms at peak', '% of peak', 'identical', 'max |dlogit|', 'same views', 'same top-1', 'peak MB']
    return tabulate(rows, headers=headers, tablefmt='github', disable_numparse=True)


def stage_table(report: dict) -> str:
    stages: list[str] = []
    for r in report['modes'].values():
        stages += [s for s in (r.get('stages_ms_per_img') or {}) if s not in stages]
    rows = [[name] + [_num((r.get('stages_ms_per_img') or {}).get(s), '.2f') for s in stages]
            for name, r in report['modes'].items() if 'error' not in r]
    return tabulate(rows, headers=['mode (ms/img)'] + stages, tablefmt='github', disable_numparse=True)


def header_lines(report: dict) -> list[str]:
    bank = report['prototypes']
    lines = [f"config: {report['config']}  method: {report['method']}  precision: {report['precision']}",
             f"device: {report['device']}  torch {report['torch']}  peak: "
             f"{report['peak_tflops'] or '-'} TFLOP/s",
             f"samples: {report['samples']} (+{report['warmup']} warm-up)  views: {report['views']}  classes: "
             f"{report['classes']} ({report['classes_source']})",
             f"images: {'SYNTHETIC' if report['synthetic_images'] else 'from the dataset'}  prototypes: "
             f"{'SYNTHETIC' if report['synthetic_prototypes'] else (bank or 'none (not needed)')}"]
    lines += [f'note: {n}' for n in report['notes']]
    lines.append('ms/img: process_batch per image (views made outside, see the views stage); speedup: img/s vs the '
                 'reference mode; identical: same top-1 on every sample and fp32 logits within '
                 f"{report['atol']:g} of the reference; peak memory: {_kind(report)}")
    return lines


def _kind(report: dict) -> str:
    kinds = {r.get('peak_mem_kind') for r in report['modes'].values()} - {None}
    return ', '.join(sorted(kinds)) or '-'


def format_report(report: dict) -> str:
    return '\n'.join(['# Speed: ' + Path(report['config']).stem, ''] + [f'    {line}' for line in header_lines(report)]
                     + ['', mode_table(report), '', '## Stages', '', stage_table(report), ''])


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / 'speed.json', out / 'speed.md'
    write_json(js, report)
    md.write_text(format_report(report))
    return js, md
