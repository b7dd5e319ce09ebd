"""tools/test.py checks the label map of the dataset before a run: a consistent one runs (and says so in log.txt),
an inconsistent one (ImageNetV2 labelled by sorted folder order, built by monkeypatching) is refused unless
--skip-data-check is given."""
import pytest

from promptsync.datasets import ImageNetV2
from promptsync.datasets.doctor_labels import LabelMapError
from promptsync.datasets.fake import make_image_folder

from .helpers import ROOT, load_tool, options

ZS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


def run(test_tool, work_dir, overrides, *extra):
    return test_tool.main([ZS, '--work-dir', str(work_dir), *extra, *options(overrides), 'default_hooks.progress.disable=True'])


@pytest.fixture
def v2_overrides(tmp_path, tiny_overrides):
    root = make_image_folder(tmp_path / 'imagenetv2-matched-frequency-format-val', ['0', '1', '10', '2'], per_class=1)
    return dict(tiny_overrides, **{'data.dataset.type': 'ImageNetV2', 'data.dataset.root': str(root)})


def test_consistent_label_map_runs_and_is_logged(test_tool, tmp_path, tiny_overrides):
    out = run(test_tool, tmp_path / 'ok', tiny_overrides)
    assert out['num_samples'] == 12
    assert 'ImageFolder: label map consistent (4 classes, 12 images)' in (tmp_path / 'ok/log.txt').read_text()


def test_inconsistent_label_map_is_refused_unless_skipped(test_tool, tmp_path, v2_overrides, monkeypatch):
    monkeypatch.setattr(ImageNetV2, '_folder_names', lambda self, indices, wnids: sorted(str(i) for i in indices))
    with pytest.raises(LabelMapError) as err:
        run(test_tool, tmp_path / 'refused', v2_overrides)
    msg = str(err.value)
    for part in ('ImageNetV2: the label map is inconsistent', 'not the sorted folder order 0, 1, 10, 100',
                 str(tmp_path / 'imagenetv2-matched-frequency-format-val/10'), 'tools/check_data.py',
                 '--skip-data-check'):
        assert part in msg
    assert not (tmp_path / 'refused/predictions.jsonl').exists()
    out = run(test_tool, tmp_path / 'skipped', v2_overrides, '--skip-data-check')
    assert out['num_samples'] == 4 and out['dataset'] == 'ImageNetV2'
    assert 'label-map check skipped' in (tmp_path / 'skipped/log.txt').read_text()
