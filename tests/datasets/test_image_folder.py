"""ImageFolder cannot be silently wrong: hidden entries, empty class folders, class names out of order."""
import random
from pathlib import Path

import pytest

from promptsync.datasets import ImageFolder
from promptsync.datasets.base import list_images
from promptsync.datasets.fake import make_image, make_image_folder
from promptsync.errors import ConfigError, ResourceError

CLASSES = ['ant', 'bee', 'golden_retriever']


def relative(ds):
    return [(str(Path(d.path).relative_to(ds.root)), d.label) for d in ds.samples]


def test_hidden_folders_and_files_are_ignored(tmp_path):
    clean = ImageFolder(str(make_image_folder(tmp_path / 'clean', CLASSES, per_class=2)))
    root = make_image_folder(tmp_path / 'notebook', ['.ipynb_checkpoints'] + CLASSES, per_class=2)
    make_image_folder(root / 'bee', ['.ipynb_checkpoints', '.thumbs'], per_class=1)
    make_image(random.Random(0)).save(root / 'ant' / '._0000.png')  # macOS resource fork
    ds = ImageFolder(str(root))
    assert relative(ds) == relative(clean)
    assert ds.classnames == clean.classnames == ['ant', 'bee', 'golden retriever']
    assert ds.ignored_hidden == 4 and clean.ignored_hidden == 0


def test_list_images_skips_and_reports_hidden_entries(tmp_path):
    make_image_folder(tmp_path, ['cls', 'cls/.cache', 'cls/sub', 'cls/sub/.git'], per_class=1)
    (tmp_path / 'cls' / '.DS_Store').write_bytes(b'')
    hidden = []
    assert list_images(tmp_path / 'cls', hidden) == [str(tmp_path / 'cls/0000.png'),
                                                     str(tmp_path / 'cls/sub/0000.png')]
    assert sorted(hidden) == [str(tmp_path / p) for p in ('cls/.DS_Store', 'cls/.cache', 'cls/sub/.git')]


def test_empty_class_folder_is_refused_by_default(tmp_path):
    root = make_image_folder(tmp_path, ['ant', 'bee', 'cat', 'dog'], per_class=[2, 0, 1, 0])
    with pytest.raises(ResourceError) as err:
        ImageFolder(str(root))
    msg = str(err.value)
    assert "2 of 4 class folders have no images: ['bee', 'dog']" in msg and str(root) in msg
    assert 'remove the empty folders' in msg and "empty_classes='drop'" in msg


def test_a_folder_with_only_hidden_images_is_empty(tmp_path):
    root = make_image_folder(tmp_path, ['ant', 'bee', 'bee/.ipynb_checkpoints'], per_class=[1, 0, 1])
    with pytest.raises(ResourceError, match=r"class folders have no images: \['bee'\]"):
        ImageFolder(str(root))


def test_empty_classes_drop(tmp_path, warnings_logged):
    root = make_image_folder(tmp_path, ['ant', 'bee', 'cat', 'dog'], per_class=[2, 0, 1, 0])
    ds = ImageFolder(str(root), empty_classes='drop')
    assert ds.classnames == ['ant', 'cat'] and ds.class_ids == ['ant', 'cat']
    assert [(Path(d.path).parent.name, d.label) for d in ds.samples] == [('ant', 0), ('ant', 0), ('cat', 1)]
    assert ds.dropped_classes == ['bee', 'dog']
    (record,) = warnings_logged
    assert "dropped 2 class folders without images from the label space: ['bee', 'dog']" in record.getMessage()
    assert ImageFolder(str(root), classnames=['an ant', 'a cat'], empty_classes='drop').classnames == \
        ['an ant', 'a cat']
    with pytest.raises(ConfigError, match=r"4 class names given for 2 class folders \(after dropping the empty "
                                          r"folders \['bee', 'dog'\]\)"):
        ImageFolder(str(root), classnames=['ant', 'bee', 'cat', 'dog'], empty_classes='drop')


def test_empty_classes_must_be_error_or_drop(tmp_path):
    root = make_image_folder(tmp_path, CLASSES, per_class=1)
    with pytest.raises(ConfigError, match=r"empty_classes must be one of \('error', 'drop'\), got 'skip'"):
        ImageFolder(str(root), empty_classes='skip')
    assert ImageFolder(str(root), empty_classes='drop').dropped_classes == []


def test_no_images_at_all(tmp_path):
    root = make_image_folder(tmp_path, CLASSES, per_class=0)
    (root / 'ant' / 'notes.txt').write_text('not an image')
    for mode in ('error', 'drop'):
        with pytest.raises(ResourceError, match='no image files under .*extensions: .jpg'):
            ImageFolder(str(root), empty_classes=mode)


def test_class_mapping_in_label_order(tmp_path):
    root = make_image_folder(tmp_path, ['zebra', 'ant', 'golden_retriever', 'bee'], per_class=[1, 2, 3, 4])
    ds = ImageFolder(str(root), classnames=['Ant', 'Bee', 'Dog', 'Zebra'])
    assert ds.class_mapping == [dict(label=0, folder='ant', name='Ant', images=2),
                                dict(label=1, folder='bee', name='Bee', images=4),
                                dict(label=2, folder='golden_retriever', name='Dog', images=3),
                                dict(label=3, folder='zebra', name='Zebra', images=1)]
    new = ImageFolder(str(root), subsample='new')
    assert new.class_mapping == [dict(label=0, folder='golden_retriever', name='golden retriever', images=3),
                                 dict(label=1, folder='zebra', name='zebra', images=1)]


@pytest.fixture
def names_file(tmp_path):
    make_image_folder(tmp_path / 'data', CLASSES, per_class=1)
    return tmp_path / 'classnames.txt'


def build(names_file, text):
    names_file.write_text(text)
    return ImageFolder(str(names_file.parent / 'data'), classnames=str(names_file))


def test_names_file_in_any_line_order(names_file):
    ds = build(names_file, 'golden_retriever golden retriever dog\n\nbee  a bee\nant\tan ant\n')
    assert ds.classnames == ['an ant', 'a bee', 'golden retriever dog']


def test_names_file_with_a_folder_twice(names_file):
    with pytest.raises(ConfigError) as err:
        build(names_file, 'ant an ant\nbee a bee\ngolden_retriever dog\nant another ant\n')
    msg = str(err.value)
    assert "1 folders are listed more than once in the class names file: 'ant' (lines 1, 4)" in msg
    assert str(names_file) in msg and 'exactly one "<folder> <class name>" line per class folder' in msg


def test_names_file_naming_folders_that_do_not_exist(names_file):
    with pytest.raises(ConfigError) as err:
        build(names_file, 'ant an ant\nbee a bee\ngolden_retriever dog\ncat a cat\n')
    msg = str(err.value)
    assert "1 lines name folders that do not exist: ['cat']" in msg and 'no class name' not in msg
    assert str(names_file) in msg and 'is it the file of this data?' in msg
    with pytest.raises(ConfigError, match=r"no class name for 2 folders \['bee', 'golden_retriever'\]; 1 lines "
                                          r"name folders that do not exist: \['Bee'\]"):
        build(names_file, 'ant an ant\nBee a bee\n')


def test_names_file_lines_of_dropped_folders_are_allowed(names_file):
    (names_file.parent / 'data' / 'cat').mkdir()
    names_file.write_text('ant an ant\nbee a bee\ncat a cat\ngolden_retriever dog\n')
    ds = ImageFolder(str(names_file.parent / 'data'), classnames=str(names_file), empty_classes='drop')
    assert ds.classnames == ['an ant', 'a bee', 'dog'] and ds.dropped_classes == ['cat']


def test_names_only_file_explains_the_format(names_file):
    with pytest.raises(ConfigError) as err:
        build(names_file, 'ant an ant\nbee\ngolden_retriever dog\n')
    msg = str(err.value)
    assert "line 2 of the class names file is 'bee': expected \"<folder> <class name>\"" in msg
    assert f'{names_file}:2' in msg and 'classnames=[...]' in msg


def test_names_file_that_does_not_exist(names_file):
    with pytest.raises(ResourceError, match='class names file .*classnames.txt does not exist'):
        ImageFolder(str(names_file.parent / 'data'), classnames=str(names_file))


def test_names_list_in_another_order_is_refused(tmp_path):
    root = make_image_folder(tmp_path, CLASSES + ['cat'], per_class=1)
    with pytest.raises(ConfigError) as err:
        ImageFolder(str(root), classnames=['Golden Retriever', 'cat', 'ant', 'bee'])
    msg = str(err.value)
    assert 'classnames are the folder names in another order: 4 of 4 labels' in msg
    assert "label 0: folder 'ant', given 'Golden Retriever'; label 1: folder 'bee', given 'cat'" in msg
    assert 'labels follow the sorted folder order' in msg
    assert ImageFolder(str(root), classnames=['Ant', 'bee', 'cat', 'golden_retriever']).classnames == \
        ['Ant', 'bee', 'cat', 'golden_retriever']


def test_names_list_of_display_names_is_accepted(tmp_path):
    root = make_image_folder(tmp_path, CLASSES, per_class=1)
    names = ['an ant', 'a honey bee', 'a golden retriever']
    assert ImageFolder(str(root), classnames=names).classnames == names
    with pytest.raises(ConfigError, match='2 class names given for 3 class folders'):
        ImageFolder(str(root), classnames=names[:2])
