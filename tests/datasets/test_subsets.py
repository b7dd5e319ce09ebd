"""Dataset options: CoOp's base/new class halves and seeded K-shot subsets (with their cache)."""
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from promptsync.datasets import ImageFolder, ImageNet, OxfordPets
from promptsync.datasets.fake import make_image_folder
from promptsync.datasets.subsets import base_new_range
from promptsync.datasets import fewshot
from promptsync.registry import DATASETS
from tests.datasets.coop_fakes import build, shipped_names

# ceil(n/2) base classes, by hand: n -> (base, new)
HALVES = {100: (50, 50), 37: (19, 18), 196: (98, 98), 102: (51, 51), 101: (51, 50), 397: (199, 198), 47: (24, 23),
          10: (5, 5), 1000: (500, 500), 200: (100, 100), 1: (1, 0)}


@pytest.mark.parametrize('n', sorted(HALVES))
def test_base_new_ranges(n):
    base, new = base_new_range(n, 'base'), base_new_range(n, 'new')
    assert (len(base), len(new)) == HALVES[n]
    assert list(base) + list(new) == list(range(n)) == list(base_new_range(n, 'all'))
    with pytest.raises(ValueError, match="subsample must be one of"):
        base_new_range(n, 'novel')


def label_counts(ds):
    return dict(Counter(d.label for d in ds.samples))


def test_pets_base_and_new_reindex_labels_names_and_ids(tmp_path):
    images, _, entries = build(tmp_path, 'oxford_pets')
    names = shipped_names('oxford_pets')
    base = OxfordPets(str(tmp_path), subsample='base')
    new = OxfordPets(str(tmp_path), subsample='new')
    assert (base.num_classes, new.num_classes) == (19, 18) and (len(base), len(new)) == (19, 18)
    assert base.classnames[0] == 'abyssinian' and base.classnames[-1] == 'keeshond' == names[18]
    assert new.classnames[0] == 'leonberger' == names[19] and new.classnames[-1] == 'yorkshire terrier'
    assert new.class_ids[0] == 'leonberger' and new.class_ids[-1] == 'yorkshire_terrier'
    assert base.classnames + new.classnames == names and (base.label_offset, new.label_offset) == (0, 19)
    json_label = {str(images / rel): label for rel, label, _ in entries['test']}
    assert all(json_label[d.path] == d.label for d in base.samples)
    assert all(json_label[d.path] == d.label + 19 for d in new.samples)  # re-indexed from 0
    assert sorted(label_counts(new)) == list(range(18))
    assert {d.path for d in base.samples} | {d.path for d in new.samples} == set(json_label)
    assert base.label_space.names == tuple(names[:19]) and len(new.label_space.ids) == 18


def test_imagenet_base_and_new(tmp_path):
    wnids = {0: 'n01440764', 499: 'n03041632', 500: 'n03042490', 999: 'n15075141'}  # ILSVRC2012 label order
    make_image_folder(tmp_path / 'imagenet/images/val', list(wnids.values()), per_class=[1, 2, 3, 4], ext='JPEG')
    full = DATASETS.build(dict(type='ImageNet', root=str(tmp_path)))
    assert label_counts(full) == {0: 1, 499: 2, 500: 3, 999: 4}
    base = ImageNet(str(tmp_path), subsample='base')
    new = DATASETS.build(dict(type='ImageNet', root=str(tmp_path), split='val', subsample='new'))
    assert base.num_classes == new.num_classes == 500
    assert label_counts(base) == {0: 1, 499: 2} and label_counts(new) == {0: 3, 499: 4}
    assert (base.classnames[0], base.classnames[499]) == ('tench', 'cleaver')
    assert (new.classnames[0], new.classnames[499]) == ('cliff dwelling', 'toilet paper')
    assert (new.class_ids[0], new.class_ids[499]) == (wnids[500], wnids[999])
    for d in new.samples:
        assert Path(d.path).parent.name == new.class_ids[d.label]


def fewshot_tree(base: Path, per_class: int = 5):
    """EuroSAT with ``per_class`` training images per class (and one val / test image)."""
    return build(base, 'eurosat', splits=('train', 'val', 'test'),
                 per_class={'train': per_class, 'val': 1, 'test': 1})


def rel_paths(ds):
    return sorted(str(Path(d.path).relative_to(ds.root)) for d in ds.samples)


def test_few_shot_k_per_class_deterministic_and_seeded(tmp_path):
    fewshot_tree(tmp_path / 'a')
    shutil.copytree(tmp_path / 'a', tmp_path / 'moved')
    two = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path / 'a'), split='train', num_shots=2, fewshot_seed=1))
    assert len(two) == 20 and label_counts(two) == {j: 2 for j in range(10)}
    assert two.fewshot.num_shots == 2 and two.fewshot.seed == 1 and two.num_classes == 10
    again = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path / 'moved'), split='train', num_shots=2,
                                fewshot_seed=1))
    assert rel_paths(again) == rel_paths(two)  # same (K, seed): same images, wherever the data is mounted
    seeds = {tuple(rel_paths(DATASETS.build(dict(type='EuroSAT', root=str(tmp_path / 'a'), split='train',
                                                   num_shots=2, fewshot_seed=s)))) for s in range(1, 5)}
    assert len(seeds) > 1
    one = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path / 'a'), split='train', num_shots=1, fewshot_seed=1))
    assert set(rel_paths(one)) < set(rel_paths(two))
    for d in two.samples:  # still the json's label
        assert Path(d.path).parent.name == f'c{d.label:03d}'


def test_few_shot_short_classes_and_test_split(tmp_path):
    fewshot_tree(tmp_path)
    with pytest.raises(ValueError, match=r"10 of 10 classes have fewer than num_shots=6.*Lower dataset.num_shots.*"
                                         r"dataset.short_classes='use_all'"):
        DATASETS.build(dict(type='EuroSAT', root=str(tmp_path), split='train', num_shots=6))
    ds = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path), split='train', num_shots=6, short_classes='use_all'))
    assert len(ds) == 50 and len(ds.fewshot.short_classes) == 10
    with pytest.raises(ValueError, match="would sample the test split"):
        DATASETS.build(dict(type='EuroSAT', root=str(tmp_path), num_shots=2))
    make_image_folder(tmp_path / 'imagenet/val', ['n01440764'], per_class=2, ext='JPEG')
    with pytest.raises(ValueError, match=r"would sample the test split \('val'\)"):
        ImageNet(str(tmp_path), num_shots=1)


def test_few_shot_after_base_new(tmp_path):
    fewshot_tree(tmp_path)
    new = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path), split='train', subsample='new', num_shots=3,
                              fewshot_seed=2))
    assert new.num_classes == 5 and label_counts(new) == {j: 3 for j in range(5)}
    assert new.classnames == ['Pasture Land', 'Permanent Crop Land', 'Residential Buildings', 'River', 'Sea or Lake']
    full = DATASETS.build(dict(type='EuroSAT', root=str(tmp_path), split='train', num_shots=3, fewshot_seed=2))
    # the images chosen per class do not depend on the class cut
    assert rel_paths(new) == sorted(p for p in rel_paths(full) if int(p[1:4]) >= 5)


def test_few_shot_cache_is_written_reused_and_checked(tmp_path, monkeypatch):
    fewshot_tree(tmp_path)
    cache = tmp_path / 'cache'
    cfg = dict(type='EuroSAT', root=str(tmp_path), split='train', num_shots=2, fewshot_seed=3, fewshot_cache=str(cache))
    first = DATASETS.build(cfg)
    path = cache / 'EuroSAT_train_all_shot_2-seed_3.json'
    record = json.loads(path.read_text())
    assert record['num_shots'] == 2 and record['seed'] == 3 and sorted(record['paths']) == rel_paths(first)

    def no_sampling(*args, **kwargs):
        raise AssertionError('the cached subset should have been used')

    monkeypatch.setattr(fewshot, 'sample_few_shot', no_sampling)
    record['paths'][0], record['paths'][1] = record['paths'][1], record['paths'][0]
    record['labels'][0], record['labels'][1] = record['labels'][1], record['labels'][0]
    path.write_text(json.dumps(record))
    assert rel_paths(DATASETS.build(cfg)) == rel_paths(first)
    record['paths'][0] = 'c000/not_there.jpg'
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"cached few-shot subset .* does not fit.*c000/not_there.jpg.*Delete"):
        DATASETS.build(cfg)


def test_image_folder_takes_the_same_options(tmp_path):
    root = make_image_folder(tmp_path / 'f', ['a', 'b', 'c'], per_class=[4, 4, 4])
    new = ImageFolder(str(root), subsample='new', num_shots=2, fewshot_seed=0)
    assert new.classnames == ['c'] and new.class_ids == ['c'] and label_counts(new) == {0: 2}
