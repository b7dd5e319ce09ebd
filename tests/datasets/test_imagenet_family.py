"""ImageNet family: ImageNet-A, ImageNet-Sketch, ImageNetV2, ImageNet train/val on miniature fake layouts.

Expectations are independent of the dataset code: hard-coded ImageNet lines, TPT's ImageNet-A mask (tested
against the shipped file in test_datasets.py) and the folder each fake image was written to.
"""
import random
from collections import Counter
from pathlib import Path

import pytest

from promptsync.datasets import ImageNet, ImageNetA, ImageNetSketch, ImageNetV2
from promptsync.datasets.fake import make_image, make_image_folder
from promptsync.registry import DATASETS, registries_of
from promptsync.utils.config import load_config
from tests.datasets.test_datasets import A_MASK

ROOT = Path(__file__).resolve().parents[2]
# (index, wnid, CLIP name) in ImageNet label order, from the ILSVRC2012 / CLIP class lists
TENCH, GOLDFISH, STINGRAY = (0, 'n01440764', 'tench'), (1, 'n01443537', 'goldfish'), (6, 'n01498041', 'stingray')
BRAMBLING, GOLDFINCH = (10, 'n01530575', 'brambling'), (11, 'n01531178', 'goldfinch')
ACORN, TOILET_PAPER = (988, 'n12267677', 'acorn'), (999, 'n15075141', 'toilet paper')


def lines():
    """The shipped classnames.txt read here directly (not through the package's reader)."""
    path = ROOT / 'promptsync/datasets/data/imagenet/classnames.txt'
    return [tuple(line.split(' ', 1)) for line in path.read_text().splitlines()]


def test_hard_coded_classes_match_the_shipped_file():
    rows = lines()
    for idx, wnid, name in (TENCH, GOLDFISH, STINGRAY, BRAMBLING, GOLDFINCH, ACORN, TOILET_PAPER):
        assert rows[idx] == (wnid, name)
    assert A_MASK[0] == STINGRAY[0] and A_MASK[1] == GOLDFINCH[0] and A_MASK[199] == ACORN[0]


def label_counts(ds):
    return dict(Counter(d.label for d in ds.samples))


def check_folders(ds, folder_of_label):
    """Every sample sits in the folder its label says (folder_of_label: label -> folder name)."""
    for d in ds.samples:
        assert Path(d.path).parent.name == folder_of_label(d.label), d


# ---------------------------------------------------------------- ImageNet-A

A_LAYOUTS = ['imagenet-adversarial/imagenet-a', 'imagenet-a', '']


@pytest.mark.parametrize('root_is_layout', [False, True])
@pytest.mark.parametrize('layout', A_LAYOUTS)
def test_imagenet_a_labels_names_ids_and_readme(tmp_path, layout, root_is_layout, warnings_logged):
    rows = lines()
    a_wnids = [rows[i][0] for i in A_MASK]
    folder = tmp_path / layout
    make_image_folder(folder, [STINGRAY[1], GOLDFINCH[1], ACORN[1]], per_class=[1, 2, 3])
    (folder / 'README.txt').write_text('ImageNet-A: 200 classes ...\n')
    ds = DATASETS.build(dict(type='ImageNetA', root=str(folder if root_is_layout else tmp_path)))
    assert ds.num_classes == 200 and len(ds) == 6
    assert label_counts(ds) == {0: 1, 1: 2, 199: 3}
    assert (ds.classnames[0], ds.classnames[1], ds.classnames[199]) == ('stingray', 'goldfinch', 'acorn')
    assert list(ds.label_space.ids) == a_wnids and ds.label_space.ids[0] == STINGRAY[1]
    assert list(ds.classnames) == [rows[i][1] for i in A_MASK]
    check_folders(ds, lambda j: a_wnids[j])
    assert not any(d.path.endswith('README.txt') for d in ds.samples)
    assert len(ds.missing_classes) == 197 and warnings_logged


def test_imagenet_a_rejects_foreign_folders(tmp_path):
    make_image_folder(tmp_path / 'imagenet-a', [STINGRAY[1], TENCH[1]], per_class=1)  # tench is not in A
    with pytest.raises(ValueError, match=f'not ImageNet-A classes.*{TENCH[1]}'):
        ImageNetA(str(tmp_path))


def test_imagenet_a_missing_root_says_where_and_how(tmp_path):
    (tmp_path / 'imagenet-a').mkdir()  # exists but holds no class folder
    with pytest.raises(FileNotFoundError) as err:
        ImageNetA(str(tmp_path))
    msg = str(err.value)
    for part in (str(tmp_path / 'imagenet-adversarial/imagenet-a'), str(tmp_path / 'imagenet-a'),
                 'imagenet-a.tar', 'data.dataset.root'):
        assert part in msg


# ---------------------------------------------------------------- ImageNet-Sketch

SKETCH_LAYOUTS = ['imagenet-sketch/images', 'imagenet-sketch/ImageNet-Sketch', 'ImageNet-Sketch',
                  'imagenet-sketch/sketch', '']


@pytest.mark.parametrize('root_is_layout', [False, True])
@pytest.mark.parametrize('layout', SKETCH_LAYOUTS)
def test_imagenet_sketch_all_1000_classes(tmp_path, layout, root_is_layout):
    rows = lines()
    folder = tmp_path / layout
    make_image_folder(folder, [TENCH[1], GOLDFISH[1], TOILET_PAPER[1]], per_class=[1, 2, 3], ext='JPEG')
    ds = DATASETS.build(dict(type='ImageNetSketch', root=str(folder if root_is_layout else tmp_path)))
    assert ds.num_classes == 1000 and len(ds) == 6
    assert label_counts(ds) == {0: 1, 1: 2, 999: 3}
    assert (ds.classnames[0], ds.classnames[1], ds.classnames[999]) == ('tench', 'goldfish', 'toilet paper')
    assert list(ds.label_space.ids) == [w for w, _ in rows] and list(ds.classnames) == [n for _, n in rows]
    check_folders(ds, lambda k: rows[k][0])
    assert len(ds.missing_classes) == 997


def test_imagenet_sketch_rejects_foreign_folders(tmp_path):
    make_image_folder(tmp_path / 'imagenet-sketch/sketch', [TENCH[1], 'n99999999'], per_class=1)
    with pytest.raises(ValueError, match='not ImageNet-Sketch classes.*n99999999'):
        ImageNetSketch(str(tmp_path))


def test_imagenet_sketch_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ImageNetSketch(str(tmp_path))
    msg = str(err.value)
    for layout in SKETCH_LAYOUTS[:-1]:
        assert str(tmp_path / layout) in msg
    assert 'HaohanWang/ImageNet-Sketch' in msg and 'data.dataset.root' in msg


# ---------------------------------------------------------------- ImageNetV2

V2_LAYOUTS = ['imagenetv2/imagenetv2-matched-frequency-format-val', 'imagenetv2-matched-frequency-format-val', '']


@pytest.mark.parametrize('root_is_layout', [False, True])
@pytest.mark.parametrize('layout', V2_LAYOUTS)
def test_imagenet_v2_labels_are_the_integer_folder_names(tmp_path, layout, root_is_layout, warnings_logged):
    rows = lines()
    folder = tmp_path / layout
    make_image_folder(folder, ['0', '1', '10', '2'], per_class=[1, 2, 3, 4], ext='jpeg')
    ds = DATASETS.build(dict(type='ImageNetV2', root=str(folder if root_is_layout else tmp_path)))
    assert ds.num_classes == 1000 and len(ds) == 10
    # a lexicographic ImageFolder would give folder '10' label 2 and folder '2' label 3
    assert label_counts(ds) == {0: 1, 1: 2, 10: 3, 2: 4}
    check_folders(ds, str)
    assert (ds.classnames[1], ds.classnames[2], ds.classnames[10]) == ('goldfish', 'great white shark', 'brambling')
    assert (ds.label_space.ids[1], ds.label_space.ids[10]) == (GOLDFISH[1], BRAMBLING[1])
    assert list(ds.label_space.ids) == [w for w, _ in rows] and list(ds.classnames) == [n for _, n in rows]
    assert len(ds.missing_classes) == 996 and '996 of 1000' in warnings_logged[0].getMessage()


@pytest.mark.parametrize('bad', ['1000', 'abc', '-1', 'n01440764'])
def test_imagenet_v2_rejects_folders_that_are_not_class_indices(tmp_path, bad):
    make_image_folder(tmp_path / 'imagenetv2-matched-frequency-format-val', ['0', '999', bad], per_class=1)
    with pytest.raises(ValueError, match=f"not ImageNetV2 classes: \\['{bad}'\\].*0..999"):
        ImageNetV2(str(tmp_path))


def test_imagenet_v2_missing_root_says_where_and_how(tmp_path):
    make_image_folder(tmp_path / 'imagenetv2', [TENCH[1]], per_class=1)  # wrong layout: wnid folders
    with pytest.raises(FileNotFoundError) as err:
        ImageNetV2(str(tmp_path))
    msg = str(err.value)
    for layout in V2_LAYOUTS[:-1]:
        assert str(tmp_path / layout) in msg
    assert 'vaishaal/ImageNetV2' in msg and 'imagenetv2-matched-frequency.tar.gz' in msg


# ---------------------------------------------------------------- ImageNet

TRAIN, VAL = [TENCH, BRAMBLING], [GOLDFISH, TOILET_PAPER]  # different classes so that a split mix-up shows


def imagenet_tree(base: Path) -> None:
    make_image_folder(base / 'train', [w for _, w, _ in TRAIN], per_class=[2, 1], ext='JPEG')
    make_image_folder(base / 'val', [w for _, w, _ in VAL], per_class=[1, 3], ext='JPEG', seed=1)


@pytest.mark.parametrize('split', ['train', 'val'])
@pytest.mark.parametrize('where,root', [('imagenet/images', ''), ('imagenet', ''), ('imagenet', 'imagenet'),
                                        ('imagenet/images', 'imagenet/images'), ('', '')])
def test_imagenet_splits_and_layouts(tmp_path, split, where, root):
    rows = lines()
    imagenet_tree(tmp_path / where)
    ds = DATASETS.build(dict(type='ImageNet', split=split, root=str(tmp_path / root)))
    expected = {TENCH[0]: 2, BRAMBLING[0]: 1} if split == 'train' else {GOLDFISH[0]: 1, TOILET_PAPER[0]: 3}
    assert ds.num_classes == 1000 and label_counts(ds) == expected
    assert (ds.classnames[0], ds.classnames[999]) == ('tench', 'toilet paper')
    assert list(ds.label_space.ids) == [w for w, _ in rows] and list(ds.classnames) == [n for _, n in rows]
    check_folders(ds, lambda k: rows[k][0])
    assert all(Path(d.path).parent.parent.name == split for d in ds.samples)


def test_imagenet_split_folder_is_not_taken_for_the_other_split(tmp_path):
    imagenet_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match='ImageNet not found'):
        ImageNet(str(tmp_path / 'val'), split='train')
    with pytest.raises(ValueError, match="'train' or 'val'"):
        ImageNet(str(tmp_path), split='test')


def test_imagenet_flat_val_and_packed_train_say_how_to_sort_them(tmp_path):
    val = tmp_path / 'imagenet/val'
    val.mkdir(parents=True)
    make_image(random.Random(0)).save(val / 'ILSVRC2012_val_00000001.JPEG')
    with pytest.raises(FileNotFoundError, match='no <wnid>/ class folders.*valprep.sh'):
        ImageNet(str(tmp_path), split='val')
    train = tmp_path / 'imagenet/images/train'
    train.mkdir(parents=True)
    (train / f'{TENCH[1]}.tar').write_bytes(b'')
    with pytest.raises(FileNotFoundError, match=r'extract each train/<wnid>\.tar'):
        ImageNet(str(tmp_path), split='train')


def test_imagenet_rejects_foreign_folders_and_missing_root(tmp_path):
    make_image_folder(tmp_path / 'imagenet/val', [TENCH[1], 'not_a_wnid'], per_class=1)
    with pytest.raises(ValueError, match='not ImageNet classes.*not_a_wnid'):
        ImageNet(str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        ImageNet(str(tmp_path / 'nowhere'), split='train')
    msg = str(err.value)
    for part in ('nowhere/imagenet/images/train', 'nowhere/imagenet/train', 'nowhere/train', 'image-net.org',
                 'valprep.sh', 'data.dataset.root'):
        assert part in msg


# ---------------------------------------------------------------- configs

def registered(name):
    return bool(registries_of(name))


@pytest.mark.parametrize('name,type_', [('imagenet_a', 'ImageNetA'), ('imagenet_v2', 'ImageNetV2'),
                                        ('imagenet_sketch', 'ImageNetSketch'), ('imagenet_val', 'ImageNet')])
def test_test_set_configs(monkeypatch, tmp_path, name, type_):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path))
    cfg = load_config(ROOT / f'configs/_base_/datasets/{name}.py')
    assert cfg.data.dataset.to_dict() == dict(type=type_, root=str(tmp_path), **(
        {'split': 'val'} if type_ == 'ImageNet' else {}))
    assert (cfg.data.batch_size, cfg.data.num_workers, cfg.data.max_samples, cfg.data.shard) == (1, 4, None, None)
    assert registered(type_)


def test_imagenet_train_config_is_a_proxy_set_next_to_a_test_set(monkeypatch, tmp_path):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path))
    base = ROOT / 'configs/_base_/datasets'
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f"_base_ = ['{base / 'imagenet_a.py'}', '{base / 'imagenet_train.py'}']\n")
    cfg = load_config(cfg_file)
    assert cfg.data.dataset.type == 'ImageNetA'
    assert cfg.proxy_data.to_dict() == dict(dataset=dict(type='ImageNet', split='train', root=str(tmp_path)),
                                            batch_size=64, num_workers=8)
    imagenet_tree(tmp_path / 'imagenet/images')
    ds = DATASETS.build(cfg.proxy_data.dataset.to_dict())
    assert label_counts(ds) == {TENCH[0]: 2, BRAMBLING[0]: 1}
