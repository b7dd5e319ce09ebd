#!/usr/bin/env python
"""`make demo`: run the main job offline, on this machine, in a few minutes.

Until the embedded offline benchmark (a tiny CLIP pretrained by the project) lands, this runs zero-shot
CLIP and TPT end to end through tools/test.py's code path on a generated toy image folder with a
*random-weight* tiny CLIP: it exercises every stage, and its accuracies are chance level by design.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

from promptsync.apis import run_test  # noqa: E402
from promptsync.datasets.fake import make_image_folder  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {'zero-shot': 'configs/zeroshot/vit_b16_imagenet_r.py', 'TPT': 'configs/tpt/vit_b16_imagenet_r.py'}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/demo')
    args = p.parse_args(argv)
    work = Path(args.work_dir)
    classes = ['cat', 'dog', 'car', 'tree', 'house', 'bird']
    data = make_image_folder(work / 'toy_folder', classes, per_class=5, size=(48, 40), seed=0)
    rows = []
    for name, config in CONFIGS.items():
        cfg = load_config(ROOT / config, {
            'model.backbone.model_name': 'ps-tiny-vit', 'model.backbone.pretrained': None,
            'data.dataset.type': 'ImageFolder', 'data.dataset.root': str(data), 'data.num_workers': 0,
            'device': 'cpu'})
        cfg.work_dir = str(work / Path(config).parent.name)
        out = run_test(cfg, resume=False)
        rows.append(dict(method=name, images=out['num_samples'], **{k: round(v, 2) for k, v in out['metrics'].items()},
                         ms_per_image=out['timing']['tta_ms_per_sample']))
    table = tabulate(rows, headers='keys', tablefmt='github')
    print('\nDemo (toy folder, random-weight tiny CLIP: chance level is %.1f%% top-1)\n' % (100 / len(classes)))
    print(table)
    (work / 'demo_table.md').write_text(table + '\n')


if __name__ == '__main__':
    main()
