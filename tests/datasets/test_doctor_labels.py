"""The label-map check run before every evaluation (promptsync.datasets.doctor_labels): silent on every dataset as
the package builds it (all layouts, base/new cuts), loud on the classic label bugs, constructed by hand here."""
import logging
from pathlib import Path

import pytest

from promptsync.datasets import ImageFolder, ImageNetA, ImageNetV2, OxfordPets
from promptsync.datasets.base import Datum
from promptsync.datasets.doctor_labels import LabelMapError, check_label_map, label_map_problems
from promptsync.datasets.fake import make_image_folder
from promptsync.registry import DATASETS
from tests.datasets.coop_fakes import build, build_aircraft
from tests.datasets.test_datasets import A_MASK, R_MASK
from tests.datasets.test_imagenet_family import ACORN, GOLDFINCH, STINGRAY, TENCH, TOILET_PAPER, imagenet_tree, lines


def wnid(index):
    return lines()[index][0]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """One data root with a miniature of every folder layout (DG family, two CoOp targets, aircraft)."""
    root = tmp_path_factory.mktemp('data')
    make_image_folder(root / 'imagenet-a', [STINGRAY[1], GOLDFINCH[1], ACORN[1], wnid(A_MASK[150])], per_class=2)
    make_image_folder(root / 'imagenet-r', [wnid(R_MASK[0]), wnid(R_MASK[120]), wnid(R_MASK[199])], per_class=2)
    make_image_folder(root / 'ImageNet-Sketch', [TENCH[1], wnid(700), TOILET_PAPER[1]], per_class=2, ext='JPEG')
    make_image_folder(root / 'imagenetv2-matched-frequency-format-val', ['0', '1', '10', '2', '100', '999', '500'],
                      per_class=2, ext='jpeg')
    imagenet_tree(root / 'imagenet')
    make_image_folder(root / 'imagenet/train', [wnid(600)], per_class=1, ext='JPEG', seed=2)  # a 'new' class
    build(root, 'oxford_pets')
    build(root, 'eurosat')
    build_aircraft(root / 'fgvc_aircraft')
    make_image_folder(root / 'folder', ['b_class', 'a_class', 'c_class'], per_class=[1, 2, 3])
    return root


CASES = [dict(type='ImageNetA'), dict(type='ImageNetR'), dict(type='ImageNetSketch'), dict(type='ImageNetV2'),
         dict(type='ImageNet', split='val'), dict(type='ImageNet', split='train'), dict(type='OxfordPets'),
         dict(type='EuroSAT'), dict(type='FGVCAircraft')]


@pytest.mark.parametrize('subsample', ['all', 'base', 'new'])
@pytest.mark.parametrize('case', CASES, ids=lambda c: c['type'] + c.get('split', ''))
def test_datasets_as_built_are_consistent(data, case, subsample):
    ds = DATASETS.build(dict(case, root=str(data), subsample=subsample))
    assert label_map_problems(ds) == []
    check_label_map(ds)


def test_image_folder_and_its_subsets_are_consistent(data):
    for subsample in ('all', 'new'):
        ds = ImageFolder(str(data / 'folder'), subsample=subsample)
        assert label_map_problems(ds) == []


def test_v2_labelled_by_sorted_folder_order_is_refused(data, monkeypatch):
    """The ImageFolder trap: labels by position in the sorted folder list 0, 1, 10, 100, 2, 500, 999, ..."""
    monkeypatch.setattr(ImageNetV2, '_folder_names', lambda self, indices, wnids: sorted(str(i) for i in indices))
    ds = ImageNetV2(str(data))
    ten = next(d for d in ds.samples if Path(d.path).parent.name == '10')
    assert ten.label == 2  # the broken map really is broken
    problems = label_map_problems(ds)
    assert len(problems) == 1
    assert 'not the sorted folder order 0, 1, 10, 100' in problems[0]
    assert "(folder '10') has label 2, the label of folder '2'" in problems[0] and ten.path in problems[0]
    with pytest.raises(LabelMapError, match=r"(?s)ImageNetV2: the label map is inconsistent.*tools/check_data.py"
                                            r".*--skip-data-check"):
        check_label_map(ds)


def test_a_without_the_mask_is_refused(data):
    """ImageNet-A named with the first 200 ImageNet classes (the mask not applied), or labels shifted by one."""
    ds = ImageNetA(str(data))
    names = [n for _, n in lines()]
    ds.classnames = names[:200]
    problems = label_map_problems(ds)
    assert problems and 'class names differ from promptsync/datasets/data/imagenet/imagenet_a_indices.txt' in \
        problems[0] and "label 0 is 'tench', expected 'stingray'" in problems[0]
    ds = ImageNetA(str(data))
    ds.samples = [Datum(d.path, (d.label + 1) % 200) for d in ds.samples]
    (problem,) = label_map_problems(ds)
    assert '8 of 8 images are not labelled by their class folder' in problem and 'imagenet_a_indices.txt' in problem


def test_coop_names_out_of_order_out_of_range_and_duplicate_ids(data):
    ds = OxfordPets(str(data))
    ds.classnames = ds.classnames[1:] + ds.classnames[:1]
    assert any('37 of 37 class names differ' in p and 'oxford_pets/classnames.txt' in p
               for p in label_map_problems(ds))
    ds = OxfordPets(str(data))
    ds.samples.append(Datum('extra.jpg', 37))
    assert label_map_problems(ds) == ["1 images have labels outside 0..36 (first: [('extra.jpg', 37)])"]
    ds = OxfordPets(str(data))
    ds.class_ids[3] = ds.class_ids[2]
    assert any('1 class ids appear more than once' in p for p in label_map_problems(ds))


def test_image_folder_with_ids_that_do_not_match_the_folders(data):
    ds = ImageFolder(str(data / 'folder'))
    ds.class_ids = ds.class_ids[::-1]
    (problem,) = label_map_problems(ds)
    assert '5 of 6 images are not labelled by their class folder' in problem  # b_class stays in the middle


def test_disabled_check_logs_that_it_was_skipped(data, monkeypatch):
    monkeypatch.setattr(ImageNetV2, '_folder_names', lambda self, indices, wnids: sorted(str(i) for i in indices))
    ds = ImageNetV2(str(data))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger('promptsync.datasets').addHandler(handler)
    try:
        check_label_map(ds, enabled=False)
    finally:
        logging.getLogger('promptsync.datasets').removeHandler(handler)
    assert any('label-map check skipped' in r.getMessage() for r in records)
