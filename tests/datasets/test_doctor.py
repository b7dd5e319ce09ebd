"""The dataset doctor (promptsync.datasets.doctor, tools/check_data.py) on miniature layouts of all 15 test sets:
a healthy data root, then one deliberate breakage at a time. Expected sizes are the reference table (CoOp and the
dataset papers), written out here, not read from the data file."""
import json
import shutil

import pytest

from promptsync.datasets import CROSS_DATASETS, doctor
from promptsync.datasets.base import Datum
from promptsync.datasets.fake import make_image_folder
from promptsync.registry import DATASETS
from tests.datasets.coop_fakes import SPECS, build, build_aircraft
from tests.datasets.test_datasets import R_MASK
from tests.datasets.test_imagenet_family import (ACORN, GOLDFINCH, STINGRAY, TENCH, TOILET_PAPER, imagenet_tree,
                                                 lines)
from tests.datasets.test_robust_loading import noisy_bytes
from tests.tools.helpers import load_tool

SIZES = dict(imagenet=50000, imagenet_v2=10000, imagenet_sketch=50889, imagenet_a=7500, imagenet_r=30000,
             caltech101=2465, oxford_pets=3669, stanford_cars=8041, flowers102=2463, food101=30300,
             fgvc_aircraft=3333, sun397=19850, dtd=1692, eurosat=8100, ucf101=3783)
DG = ['imagenet', 'imagenet_v2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r']
A_DIR, V2_DIR = 'imagenet-adversarial/imagenet-a', 'imagenetv2/imagenetv2-matched-frequency-format-val'
# images each fake test set holds (coop_fakes: one test image per class)
FAKE = dict(imagenet=4, imagenet_v2=4, imagenet_sketch=4, imagenet_a=6, imagenet_r=4, fgvc_aircraft=100,
            **{k: s.num_classes for k, s in SPECS.items()})


def write_dg(root):
    make_image_folder(root / A_DIR, [STINGRAY[1], GOLDFINCH[1], ACORN[1]], per_class=2)
    make_image_folder(root / 'imagenet-rendition/imagenet-r', [lines()[i][0] for i in (R_MASK[0], R_MASK[199])],
                      per_class=2)
    make_image_folder(root / 'imagenet-sketch/images', [TENCH[1], TOILET_PAPER[1]], per_class=2, ext='JPEG')
    make_image_folder(root / V2_DIR, ['0', '1', '10', '2'], per_class=1, ext='jpeg')
    imagenet_tree(root / 'imagenet/images')


@pytest.fixture(scope='module')
def healthy(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    write_dg(root)
    for key in SPECS:
        build(root, key)
    build_aircraft(root / 'fgvc_aircraft')
    return root


@pytest.fixture(scope='module')
def tool():
    return load_tool('check_data')


def run(tool, capsys, *argv):
    code = tool.main([str(a) for a in argv])
    return code, capsys.readouterr().out


def by_key(report):
    return {r['key']: r for r in report['datasets']}


def test_expectations_are_the_reference_sizes():
    exp = doctor.expectations()['datasets']
    assert {k: v['images'] for k, v in exp.items() if k != 'imagenet_train'} == SIZES
    assert exp['imagenet_train']['images'] == 1281167 and exp['imagenet_train']['options'] == {'split': 'train'}
    assert set(doctor.SUITES['cross_dataset']) == set(CROSS_DATASETS) and doctor.SUITES['dg'] == tuple(DG)
    for key, e in exp.items():
        cls = DATASETS.get(e['type'])
        assert e['classes'] == (cls.num_known_classes if key in CROSS_DATASETS else
                                200 if key in ('imagenet_a', 'imagenet_r') else 1000)
        assert e['source']


def test_selection_rules():
    everything = doctor.select('all')
    assert list(everything) == DG + list(CROSS_DATASETS) and not any(everything.values())
    assert doctor.select('dg') == dict.fromkeys(DG, True)
    assert doctor.select('all,dtd')['dtd'] and not doctor.select('all,dtd')['eurosat']
    assert doctor.select('dtd, imagenet_a') == {'imagenet_a': True, 'dtd': True}
    assert doctor.select('dg', imagenet_train=True) == dict(dict.fromkeys(DG, True), imagenet_train=True)
    with pytest.raises(ValueError, match="unknown dataset or suite 'imagenet_c'.*cross_dataset.*oxford_pets"):
        doctor.select('imagenet_c')


def test_healthy_layout(healthy, tool, capsys, tmp_path):
    code, out = run(tool, capsys, '--data-root', healthy, '--json', tmp_path / 'r.json')
    report = json.loads((tmp_path / 'r.json').read_text())
    assert code == report['exit_code'] == 0 and report['verdict'] == '15 of 15 found'
    for key, r in by_key(report).items():
        assert r['status'] == 'found' and not r['errors'] and not r['unreadable'], key
        assert r['images'] == FAKE[key] and r['expected_images'] == SIZES[key]
        assert r['checked'] == min(FAKE[key], 300)
        assert f'{FAKE[key]:,} images; the full set has {SIZES[key]:,}' in r['warnings'][-1]  # a subset: warning
        assert key in out
    a = by_key(report)['imagenet_a']
    assert a['root'] == str(healthy / A_DIR) and (a['classes'], a['classes_with_images']) == (200, 3)
    assert a['warnings'][0].startswith(f'197 of 200 class folders are missing under {healthy / A_DIR}')
    assert by_key(report)['dtd']['split_file'] == str(healthy / 'dtd/split_zhou_DescribableTextures.json')
    assert '6 / 7,500' in out and '3 / 200' in out and 'exit 0: 15 of 15 found' in out


def test_full_count_gives_no_warning(healthy, monkeypatch):
    exp = json.loads(json.dumps(doctor.expectations()))
    exp['datasets']['eurosat']['images'] = 10
    monkeypatch.setattr(doctor, 'expectations', lambda: exp)
    r = doctor.diagnose('eurosat', healthy)
    assert r.status == 'found' and r.warnings == [] and r.fixes == [] and r.checked == 10


def test_missing_datasets(tmp_path, tool, capsys):
    code, out = run(tool, capsys, '--suite', 'dg', '--data-root', tmp_path)
    assert code == 1 and 'exit 1: missing: ' + ', '.join(DG) in out
    for part in (str(tmp_path / A_DIR), str(tmp_path / 'imagenet-a'), 'imagenet-a.tar',
                 f'so that {tmp_path / A_DIR}/n01498041/... exists', str(tmp_path / V2_DIR), 'valprep.sh'):
        assert part in out
    build(tmp_path, 'eurosat')
    code, out = run(tool, capsys, '--data-root', tmp_path)  # 'all' asks for nothing: a survey
    assert code == 0 and 'exit 0: 1 of 15 found (not asked for: imagenet, ' in out and 'missing (not asked)' in out
    code, out = run(tool, capsys, '--suite', 'eurosat,dtd', '--data-root', tmp_path)
    assert code == 1 and 'exit 1: missing: dtd' in out
    assert f'and put it in {tmp_path / "dtd"}/ (CoOp layout)' in out  # the split file too, with the real path
    code, out = run(tool, capsys, '--data-root', tmp_path / 'elsewhere')
    assert code == 1 and 'no dataset found' in out


def test_empty_dataset_folder_is_malformed_not_missing(tmp_path):
    (tmp_path / 'imagenet-a').mkdir()
    r = doctor.diagnose('imagenet_a', tmp_path)
    assert r.status == 'malformed' and 'ImageNet-A not found' in r.errors[0] and 'imagenet-a.tar' in r.fixes[0]


def test_a_folder_outside_the_mask(tmp_path, tool, capsys):
    make_image_folder(tmp_path / A_DIR, [STINGRAY[1], TENCH[1]], per_class=1)  # tench is not an ImageNet-A class
    code, out = run(tool, capsys, '--suite', 'imagenet_a', '--data-root', tmp_path)
    assert code == 1 and 'exit 1: malformed: imagenet_a' in out and TENCH[1] in out
    r = doctor.diagnose('imagenet_a', tmp_path)
    assert r.status == 'malformed'
    assert f"{tmp_path / A_DIR} has folders that are not ImageNet-A classes: ['{TENCH[1]}']" in r.errors[0]
    assert r.fixes == [f'download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar and extract it so that '
                       f'{tmp_path / A_DIR}/n01498041/... exists']


def test_v2_with_a_folder_that_is_not_a_class_index(tmp_path):
    make_image_folder(tmp_path / V2_DIR, ['0', '1', 'n01440764'], per_class=1)
    r = doctor.diagnose('imagenet_v2', tmp_path)
    assert r.status == 'malformed' and "not ImageNetV2 classes: ['n01440764']" in r.errors[0]
    assert 'class index 0..999' in r.errors[0] and 'vaishaal/ImageNetV2' in r.fixes[0]


def test_split_json_listing_missing_files(tmp_path, tool, capsys):
    images, json_path, entries = build(tmp_path, 'oxford_pets')
    gone = [rel for rel, _, _ in entries['test'][3:6]]
    for rel in gone:
        (images / rel).unlink()
    code, out = run(tool, capsys, '--suite', 'oxford_pets', '--data-root', tmp_path)
    assert code == 1
    r = doctor.diagnose('oxford_pets', tmp_path)
    assert r.status == 'malformed' and f"3 of 37 images of split 'test' listed in {json_path}" in r.errors[0]
    assert str(gone) in r.errors[0] and str(images) in r.errors[0]
    assert 'images.tar.gz' in r.fixes[0] and str(tmp_path / 'oxford_pets') in r.fixes[0]
    assert gone[0] in out and 'images.tar.gz' in out


def test_missing_split_json(tmp_path):
    _, json_path, _ = build(tmp_path, 'ucf101')
    json_path.unlink()
    r = doctor.diagnose('ucf101', tmp_path)
    assert r.status == 'malformed' and 'found the dataset folder' in r.errors[0] and str(json_path) in r.errors[0]
    assert '1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y' in r.fixes[0]


def test_imagenet_flat_val_is_malformed(tmp_path):
    make_image_folder(tmp_path / 'imagenet', ['val'], per_class=2, ext='JPEG')  # flat val/*.JPEG
    r = doctor.diagnose('imagenet', tmp_path)
    assert r.status == 'malformed' and 'no <wnid>/ class folders' in r.errors[0] and 'valprep.sh' in r.fixes[0]


def test_truncated_image(tmp_path, tool, capsys):
    images, _, entries = build(tmp_path, 'dtd')
    bad = images / entries['test'][20][0]
    jpg = noisy_bytes('JPEG')
    bad.write_bytes(jpg[:len(jpg) // 2])
    code, out = run(tool, capsys, '--suite', 'dtd', '--data-root', tmp_path, '--images', 'all')
    assert code == 1 and str(bad) in out and 'exit 1: malformed: dtd' in out
    r = doctor.diagnose('dtd', tmp_path, images=None)
    assert r.status == 'malformed' and r.checked == 47 and [u['path'] for u in r.unreadable] == [str(bad)]
    assert 'truncated' in r.unreadable[0]['error'] and r.errors[0].startswith('1 of 47 checked images cannot be read')
    assert len(r.fixes) == 1 and 'replace the unreadable files' in r.fixes[0] and 'dtd-r1.0.1.tar.gz' in r.fixes[0]
    skipped = doctor.diagnose('dtd', tmp_path, images=0)  # no decoding: the layout alone is fine
    assert skipped.status == 'found' and skipped.checked == 0


def test_decoded_sample_is_spread_over_classes():
    samples = [Datum(f'c{j}/{k}.jpg', j) for j in range(50) for k in range(10)]  # 50 classes, 10 images each
    once, twice = doctor.spread(samples, 50), doctor.spread(samples, 100)
    assert sorted(samples[i].label for i in once) == list(range(50))
    assert sorted(samples[i].label for i in twice) == sorted(list(range(50)) * 2)
    assert once == doctor.spread(samples, 50) == sorted(once) and set(once) < set(twice)
    assert once != doctor.spread(samples, 50, seed=1)  # which image of a class: seeded
    assert doctor.spread(samples, None) == list(range(500)) and doctor.spread(samples, 0) == []


def test_broken_copy_of_the_healthy_root(healthy, tmp_path, tool, capsys):
    """Survey mode still fails on a malformed dataset, and names only that one."""
    root = tmp_path / 'data'
    shutil.copytree(healthy, root)
    make_image_folder(root / 'imagenet-rendition/imagenet-r', [TENCH[1]], per_class=1)  # tench: not in R
    code, out = run(tool, capsys, '--data-root', root, '--images', '0')
    assert code == 1 and 'exit 1: malformed: imagenet_r' in out and f"['{TENCH[1]}']" in out


@pytest.mark.parametrize('argv', [['--suite', 'imagenet_c'], ['--images', 'some'], ['--images', '-1']])
def test_usage_errors_exit_2(tool, capsys, argv):
    with pytest.raises(SystemExit) as err:
        tool.main(argv)
    assert err.value.code == 2 and ('imagenet_c' in capsys.readouterr().err or argv[0] == '--images')
