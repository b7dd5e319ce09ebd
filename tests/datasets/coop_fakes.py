"""Miniature CoOp / TPT layouts of the 10 cross-dataset targets, written by the tests (no downloads).

Expectations are written here by hand, independently of the dataset code: folder names, image folders, split
file names, class counts and a few (label, json name, clean name) rows per dataset, from CoOp's DATASETS.md and
dataset files and TPT's ``data/cls_to_names.py`` / ``data/fewshot_datasets.py``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from promptsync.datasets.fake import make_image

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Spec:
    type: str
    coop_dir: str
    tpt_dir: str
    image_dir: str      # CoOp: the split's paths are relative to <coop_dir>/<image_dir>
    tpt_suffix: str     # TPT: relative to <tpt_dir>/<tpt_suffix> (data/fewshot_datasets.py path_dict)
    split_file: str
    num_classes: int
    rows: dict = field(default_factory=dict)  # label -> (name in CoOp's json, clean class name)
    underscores: bool = False                 # CoOp's json names use '_' where the clean names have ' '


SPECS = {
    'caltech101': Spec('Caltech101', 'caltech-101', 'Caltech101', '101_ObjectCategories', '',
                       'split_zhou_Caltech101.json', 100,
                       {0: ('face', 'face'), 4: ('airplane', 'airplane'), 18: ('car_side', 'car side'),
                        99: ('yin_yang', 'yin yang')}, True),
    'oxford_pets': Spec('OxfordPets', 'oxford_pets', 'OxfordPets', 'images', '', 'split_zhou_OxfordPets.json', 37,
                        {0: ('abyssinian', 'abyssinian'), 1: ('american_bulldog', 'american bulldog'),
                         18: ('keeshond', 'keeshond'), 19: ('leonberger', 'leonberger'),
                         36: ('yorkshire_terrier', 'yorkshire terrier')}, True),
    'stanford_cars': Spec('StanfordCars', 'stanford_cars', 'StanfordCars', '', '', 'split_zhou_StanfordCars.json',
                          196,
                          {0: ('2000 AM General Hummer SUV',) * 2, 97: ('1998 Eagle Talon Hatchback',) * 2,
                           195: ('2012 smart fortwo Convertible',) * 2}),
    'flowers102': Spec('Flowers102', 'oxford_flowers', 'Flower102', 'jpg', 'jpg', 'split_zhou_OxfordFlowers.json', 102,
                       {0: ('pink primrose',) * 2, 1: ('hard-leaved pocket orchid',) * 2, 51: ('wild pansy',) * 2,
                        101: ('blackberry lily',) * 2}),
    'food101': Spec('Food101', 'food-101', 'Food101', 'images', 'images', 'split_zhou_Food101.json', 101,
                    {0: ('apple_pie', 'apple pie'), 100: ('waffles', 'waffles')}, True),
    'sun397': Spec('SUN397', 'sun397', 'SUN397', 'SUN397', '', 'split_zhou_SUN397.json', 397,
                   {0: ('abbey', 'abbey'), 8: ('outdoor apartment_building', 'outdoor apartment building'),
                    351: ('indoor_procenium theater', 'indoor procenium theater'),
                    396: ('youth_hostel', 'youth hostel')}, True),
    'dtd': Spec('DTD', 'dtd', 'DTD', 'images', 'images', 'split_zhou_DescribableTextures.json', 47,
                {0: ('banded', 'banded'), 30: ('polka-dotted', 'polka-dotted'), 46: ('zigzagged', 'zigzagged')}),
    'eurosat': Spec('EuroSAT', 'eurosat', 'eurosat', '2750', '', 'split_zhou_EuroSAT.json', 10,
                    {0: ('Annual Crop Land',) * 2, 3: ('Highway or Road',) * 2, 9: ('Sea or Lake',) * 2}),
    'ucf101': Spec('UCF101', 'ucf101', 'UCF101', 'UCF-101-midframes', '', 'split_zhou_UCF101.json', 101,
                   {0: ('Apply_Eye_Makeup', 'Apply Eye Makeup'), 100: ('Yo_Yo', 'Yo Yo')}, True),
}
AIRCRAFT_ROWS = {0: '707-320', 37: 'BAE 146-200', 72: 'F-16A/B', 99: 'Yak-42'}
PER_CLASS = {'train': 3, 'val': 1, 'test': 1}   # images per class in each split of the fake json


def shipped_names(key: str) -> list[str]:
    """The shipped class list, read directly (the spot rows above are checked against it in the tests)."""
    return (ROOT / f'promptsync/datasets/data/{key}/classnames.txt').read_text().splitlines()


def json_names(key: str) -> list[str]:
    """The class names as CoOp's split json writes them."""
    spec = SPECS[key]
    names = [n.replace(' ', '_') if spec.underscores else n for n in shipped_names(key)]
    for label, (raw, _) in spec.rows.items():
        names[label] = raw
    return names


def split_entries(key: str, per_class: dict | None = None) -> dict:
    """CoOp's split format; paths ``c<label>/<split>_<k>.jpg`` (flat ``<label>_<split>_<k>.jpg`` for Pets)."""
    names = json_names(key)
    out = {}
    for split, k in (per_class or PER_CLASS).items():
        out[split] = [[f'{j}_{split}_{i}.jpg' if key == 'oxford_pets' else f'c{j:03d}/{split}_{i}.jpg', j, name]
                      for j, name in enumerate(names) for i in range(k)]
    return out


def write_images(folder: Path, rels, seed: int = 0) -> None:
    rng = random.Random(seed)
    for rel in rels:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make_image(rng, (12, 10)).save(path)


def build(base: Path, key: str, layout: str = 'coop', splits=('test',), per_class: dict | None = None,
          entries: dict | None = None) -> tuple[Path, Path, dict]:
    """Write dataset ``key`` under data root ``base``; returns (image folder, split json, entries)."""
    spec = SPECS[key]
    entries = entries or split_entries(key, per_class)
    if layout == 'coop':
        folder = base / spec.coop_dir
        json_path, images = folder / spec.split_file, folder / spec.image_dir
    else:
        folder = base / spec.tpt_dir
        json_path, images = base / 'data_splits' / spec.split_file, folder / spec.tpt_suffix
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(entries))
    for split in splits:
        write_images(images, [rel for rel, _, _ in entries[split]])
    return images, json_path, entries


def build_aircraft(folder: Path, splits=('test',), per_class: int = 1) -> dict:
    """The official FGVC-Aircraft files: variants.txt, images_variant_<split>.txt, images/<id>.jpg."""
    variants = shipped_names('fgvc_aircraft')
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'variants.txt').write_text('\n'.join(variants) + '\n')
    rows = {}
    for s, split in enumerate(('train', 'val', 'test')):
        rows[split] = [(f'{s}{j:03d}{i:02d}', j) for j, _ in enumerate(variants) for i in range(per_class)]
        (folder / f'images_variant_{split}.txt').write_text(
            ''.join(f'{image} {variants[j]}\n' for image, j in rows[split]))
    for split in splits:
        write_images(folder / 'images', [f'{image}.jpg' for image, _ in rows[split]])
    return rows
