"""The 10 cross-dataset targets on miniature CoOp / TPT layouts: labels, names, ids, split files, errors, configs."""
import json
import os
import shutil
from pathlib import Path

import pytest

from promptsync.datasets import CROSS_DATASETS, FGVCAircraft, OxfordPets
from promptsync.datasets.resources import load_templates
from promptsync.registry import DATASETS
from promptsync.utils.config import load_config
from tests.datasets.coop_fakes import (AIRCRAFT_ROWS, PER_CLASS, ROOT, SPECS, build, build_aircraft, json_names,
                                       shipped_names)

KEYS = sorted(SPECS)
COUNTS = dict(caltech101=100, oxford_pets=37, stanford_cars=196, flowers102=102, food101=101, fgvc_aircraft=100,
              sun397=397, dtd=47, eurosat=10, ucf101=101)


def make(key, root, **kw):
    return DATASETS.build(dict(type=SPECS[key].type if key in SPECS else 'FGVCAircraft', root=str(root), **kw))


@pytest.mark.parametrize('key', sorted(COUNTS))
def test_shipped_class_lists(key):
    names = shipped_names(key)
    assert len(names) == len(set(names)) == COUNTS[key] == CROSS_DATASETS[key].num_known_classes
    assert all(n == n.strip() and '_' not in n and '  ' not in n for n in names)
    rows = AIRCRAFT_ROWS if key == 'fgvc_aircraft' else {j: clean for j, (_, clean) in SPECS[key].rows.items()}
    for label, clean in rows.items():
        assert names[label] == clean, (key, label)


@pytest.mark.parametrize('where', ['coop', 'coop_dataset_dir', 'tpt'])
@pytest.mark.parametrize('key', KEYS)
def test_layouts_labels_names_and_ids(tmp_path, key, where):
    spec = SPECS[key]
    images, json_path, entries = build(tmp_path, key, 'tpt' if where == 'tpt' else 'coop')
    root = tmp_path / spec.coop_dir if where == 'coop_dataset_dir' else tmp_path
    ds = make(key, root)
    n = spec.num_classes
    assert ds.num_classes == n and len(ds) == n * PER_CLASS['test'] and ds.split == 'test'
    assert Path(ds.split_path) == json_path and Path(ds.root) == images
    label_of = {str(images / rel): label for rel, label, _ in entries['test']}
    assert {d.path: d.label for d in ds.samples} == label_of  # every listed file, with its json label
    assert all(os.path.isfile(d.path) for d in ds.samples)
    for label, (raw, clean) in spec.rows.items():
        assert ds.classnames[label] == clean and ds.class_ids[label] == raw
    assert ds.classnames == shipped_names(key) and ds.class_ids == json_names(key)
    assert ds.label_space.ids == tuple(json_names(key))


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_split_selection_reads_that_split(tmp_path, split):
    images, _, entries = build(tmp_path, 'eurosat', splits=('train', 'val', 'test'))
    ds = make('eurosat', tmp_path, split=split)
    assert len(ds) == 10 * PER_CLASS[split]
    assert sorted(d.path for d in ds.samples) == sorted(str(images / rel) for rel, _, _ in entries[split])
    assert all(Path(d.path).name.startswith(split) for d in ds.samples)
    with pytest.raises(ValueError, match="split must be one of"):
        make('eurosat', tmp_path, split='trainval')


def test_tpt_layout_accepts_the_coop_image_folder_and_a_json_inside(tmp_path):
    """TPT folder names with the split json inside the dataset folder and the images in CoOp's image folder."""
    folder = tmp_path / 'Caltech101'
    entries = build(tmp_path / 'scratch', 'caltech101')[2]
    (folder / '101_ObjectCategories').mkdir(parents=True)
    (folder / 'split_zhou_Caltech101.json').write_text(json.dumps(entries))
    shutil.copytree(tmp_path / 'scratch/caltech-101/101_ObjectCategories', folder / '101_ObjectCategories',
                    dirs_exist_ok=True)
    ds = make('caltech101', tmp_path)
    assert Path(ds.root) == folder / '101_ObjectCategories' and len(ds) == 100
    assert ds.classnames[:5] == ['face', 'leopard', 'motorbike', 'accordion', 'airplane']


def test_coop_layout_wins_over_tpt_when_both_exist(tmp_path):
    build(tmp_path, 'dtd', 'coop')
    build(tmp_path, 'dtd', 'tpt')
    assert Path(make('dtd', tmp_path).root) == tmp_path / 'dtd/images'


# ---------------------------------------------------------------- FGVC-Aircraft

@pytest.mark.parametrize('where', ['fgvc_aircraft', 'fgvc-aircraft-2013b/data'])
@pytest.mark.parametrize('root_is_folder', [False, True])
def test_aircraft_variant_files(tmp_path, where, root_is_folder):
    folder = tmp_path / where
    rows = build_aircraft(folder, splits=('test', 'val'))
    ds = make('fgvc_aircraft', folder if root_is_folder else tmp_path)
    assert isinstance(ds, FGVCAircraft) and ds.num_classes == 100 and len(ds) == 100
    assert {d.path: d.label for d in ds.samples} == {str(folder / 'images' / f'{i}.jpg'): j for i, j in rows['test']}
    for label, name in AIRCRAFT_ROWS.items():
        assert ds.classnames[label] == ds.class_ids[label] == name
    assert Path(ds.split_path) == folder / 'images_variant_test.txt'
    val = make('fgvc_aircraft', tmp_path, split='val')
    assert sorted(d.path for d in val.samples) == sorted(str(folder / 'images' / f'{i}.jpg') for i, _ in rows['val'])


def test_aircraft_errors(tmp_path):
    folder = tmp_path / 'fgvc_aircraft'
    build_aircraft(folder)
    (folder / 'images_variant_train.txt').unlink()
    with pytest.raises(FileNotFoundError, match=r"images_variant_train\.txt is missing.*fgvc-aircraft-2013b"):
        make('fgvc_aircraft', tmp_path, split='train')
    lines = (folder / 'images_variant_test.txt').read_text().splitlines()
    (folder / 'images_variant_test.txt').write_text('\n'.join(lines[:3] + ['9999999 Concorde'] + lines[3:]))
    with pytest.raises(ValueError, match=r"1 lines of .*images_variant_test.txt name variants that are not in .*"
                                         r"variants.txt \(first: \['9999999 Concorde'\]"):
        make('fgvc_aircraft', tmp_path)
    (folder / 'images_variant_test.txt').write_text('\n'.join(lines))
    variants = (folder / 'variants.txt').read_text().splitlines()
    (folder / 'variants.txt').write_text('\n'.join(variants[:-1]))
    with pytest.raises(ValueError, match='variants.txt has 99 classes, FGVCAircraft has 100'):
        make('fgvc_aircraft', tmp_path)
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r'(?s)found the dataset folder .*fgvc_aircraft but not its split '
                                                r'file.*variants.txt.*fgvc-aircraft-2013b.tar.gz'):
        make('fgvc_aircraft', tmp_path)


# ---------------------------------------------------------------- errors

def test_missing_split_json_names_the_file_and_where_to_put_it(tmp_path):
    images, json_path, _ = build(tmp_path, 'oxford_pets')
    json_path.unlink()
    with pytest.raises(FileNotFoundError) as err:
        OxfordPets(str(tmp_path))
    msg = str(err.value)
    for part in ('found the dataset folder', str(tmp_path / 'oxford_pets/split_zhou_OxfordPets.json'),
                 str(tmp_path / 'data_splits/split_zhou_OxfordPets.json'),
                 'drive.google.com/file/d/1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs', 'CoOp'):
        assert part in msg


def test_missing_dataset_lists_the_layouts_and_the_downloads(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        make('ucf101', tmp_path)
    msg = str(err.value)
    for part in ('UCF101 not found', str(tmp_path / 'ucf101'), str(tmp_path / 'UCF101'), 'split_zhou_UCF101.json',
                 'UCF-101-midframes.zip', 'data.dataset.root', 'DATASETS.md'):
        assert part in msg


def test_missing_images_are_counted_and_the_first_reported(tmp_path):
    images, _, entries = build(tmp_path, 'oxford_pets')
    gone = [rel for rel, _, _ in entries['test'][5:8]]
    for rel in gone:
        (images / rel).unlink()
    with pytest.raises(FileNotFoundError) as err:
        OxfordPets(str(tmp_path))
    msg = str(err.value)
    assert "3 of 37 images of split 'test'" in msg and str(gone) in msg and 'images.tar.gz' in msg
    assert str(images) in msg


def test_wrong_class_count(tmp_path):
    entries = {s: [e for e in rows if e[1] != 36] for s, rows in build(tmp_path / 'a', 'oxford_pets')[2].items()}
    build(tmp_path, 'oxford_pets', entries=entries)
    with pytest.raises(ValueError, match=r'has 36 classes, OxfordPets has 37.*split_zhou_OxfordPets.json'):
        OxfordPets(str(tmp_path))


def test_name_mismatch_names_the_first_differing_label(tmp_path):
    entries = build(tmp_path / 'a', 'oxford_pets')[2]
    for rows in entries.values():
        for e in rows:
            if e[1] in (5, 9):
                e[2] = 'sphinx cat'
    build(tmp_path, 'oxford_pets', entries=entries)
    with pytest.raises(ValueError, match=r"label 5 is 'sphinx cat' in .* but 'bengal' in promptsync's class list"
                                         r".*2 of 37 labels differ"):
        OxfordPets(str(tmp_path))


def test_shifted_labels_and_conflicting_names(tmp_path):
    entries = build(tmp_path / 'a', 'eurosat')[2]
    shifted = {s: [[p, y + 1, n] for p, y, n in rows] for s, rows in entries.items()}
    build(tmp_path / 'b', 'eurosat', entries=shifted)
    with pytest.raises(ValueError, match=r'labels outside 0..9: \[10\]'):
        make('eurosat', tmp_path / 'b')
    entries['val'][0][2] = 'Forest'  # label 0 named twice
    build(tmp_path / 'c', 'eurosat', entries=entries)
    with pytest.raises(ValueError, match="label 0 two class names, 'Annual Crop Land' and 'Forest'"):
        make('eurosat', tmp_path / 'c')


def test_malformed_split_files(tmp_path):
    _, json_path, entries = build(tmp_path, 'dtd')
    json_path.write_text('{"train": [')
    with pytest.raises(ValueError, match='not a valid json file.*1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x'):
        make('dtd', tmp_path)
    json_path.write_text(json.dumps({'train': entries['train'], 'test': entries['test']}))
    with pytest.raises(ValueError, match=r"not in CoOp's split format.*\['test', 'train'\]"):
        make('dtd', tmp_path)
    json_path.write_text(json.dumps(dict(entries, test=[['x.jpg', 0]])))
    with pytest.raises(ValueError, match=r'every entry must be \[image path, integer label, class name\]'):
        make('dtd', tmp_path)


# ---------------------------------------------------------------- templates and configs

TEMPLATES = dict(caltech101='a photo of a {}.', oxford_pets='a photo of a {}, a type of pet.',
                 stanford_cars='a photo of a {}.', flowers102='a photo of a {}, a type of flower.',
                 food101='a photo of {}, a type of food.', fgvc_aircraft='a photo of a {}, a type of aircraft.',
                 sun397='a photo of a {}.', dtd='{} texture.', eurosat='a centered satellite photo of {}.',
                 ucf101='a photo of a person doing {}.')


@pytest.mark.parametrize('key', sorted(COUNTS))
def test_templates_and_configs(monkeypatch, tmp_path, key):
    assert load_templates(key) == [TEMPLATES[key]]
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path))
    cfg = load_config(ROOT / f'configs/_base_/datasets/{key}.py')
    assert cfg.data.dataset.to_dict() == dict(type=CROSS_DATASETS[key].__name__, split='test', root=str(tmp_path))
    assert (cfg.data.batch_size, cfg.data.num_workers, cfg.data.max_samples, cfg.data.shard) == (1, 4, None, None)
    assert DATASETS.get(cfg.data.dataset.type) is CROSS_DATASETS[key]


def test_coop_folder_name_spellings_are_accepted_but_not_at_another_label(tmp_path):
    """CoOp renames EuroSAT's and Caltech's folders (NEW_CNAMES); a split file with the folder names still reads."""
    folders = ['AnnualCrop', 'Forest', 'HerbaceousVegetation', 'Highway', 'Industrial', 'Pasture', 'PermanentCrop',
               'Residential', 'River', 'SeaLake']
    entries = build(tmp_path / 'a', 'eurosat')[2]
    raw = {s: [[p, y, folders[y]] for p, y, _ in rows] for s, rows in entries.items()}
    build(tmp_path / 'b', 'eurosat', entries=raw)
    ds = make('eurosat', tmp_path / 'b')
    assert ds.class_ids == folders and ds.classnames[0] == 'Annual Crop Land' and ds.classnames[3] == 'Highway or Road'
    swapped = {s: [[p, y, folders[(y + 1) % 10] if y in (3, 4) else folders[y]] for p, y, _ in rows]
               for s, rows in entries.items()}
    build(tmp_path / 'c', 'eurosat', entries=swapped)
    with pytest.raises(ValueError, match="label 3 is 'Industrial' in .* but 'Highway or Road'"):
        make('eurosat', tmp_path / 'c')
    entries = build(tmp_path / 'd', 'caltech101')[2]
    for rows in entries.values():
        for e in rows:
            e[2] = {0: 'Faces', 4: 'airplanes'}.get(e[1], e[2])
    build(tmp_path / 'e', 'caltech101', entries=entries)
    ds = make('caltech101', tmp_path / 'e')
    assert (ds.class_ids[0], ds.classnames[0], ds.class_ids[4], ds.classnames[4]) == ('Faces', 'face', 'airplanes',
                                                                                      'airplane')
