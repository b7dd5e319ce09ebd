"""Runs every example of docs/extending.md: its files are written out, its commands executed (in-process), with a
tiny model and generated images in place of CLIP ViT-B/16 and the real data."""
import csv
import json
import re
import shlex

import pytest

from promptsync.datasets.fake import make_image_folder

from .conftest import TINY
from .tools.helpers import ROOT, load_tool, options

DOC = ROOT / 'docs' / 'extending.md'
FILE_RE = re.compile(r'<!-- example-file: (\S+) -->\n```\w*\n(.*?)```', re.S)
RUN_RE = re.compile(r'<!-- example-run -->\n```bash\n(.*?)\n```', re.S)


def test_the_doc_has_examples():
    text = DOC.read_text()
    assert len(FILE_RE.findall(text)) >= 8 and len(RUN_RE.findall(text)) >= 5


def overrides_for(config_text: str, folder) -> dict:
    ov = {'model.backbone.precision': 'fp32', 'data.num_workers': 0, 'device': 'cpu',
          'tta.views.n_views': 8, 'tta.selection.ratio': 0.25}
    if 'model_name=' not in config_text:
        ov.update({'model.backbone.model_name': TINY, 'model.backbone.pretrained': None})
    if 'data = dict(' not in config_text:
        ov.update({'data.dataset.type': 'ImageFolder', 'data.dataset.root': str(folder)})
    return ov


def test_every_example_runs(tmp_path, monkeypatch):
    text = DOC.read_text()
    for rel, content in FILE_RE.findall(text):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (tmp_path / 'configs').symlink_to(ROOT / 'configs')
    classes = ['cat', 'dog', 'bird']
    folder = make_image_folder(tmp_path / 'images', classes, per_class=2)
    (tmp_path / 'data').mkdir()
    with (tmp_path / 'data' / 'my_list.csv').open('w', newline='') as fh:  # the CSV layout the doc describes
        for label, name in enumerate(classes):
            for img in sorted((folder / name).iterdir()):
                csv.writer(fh).writerow([f'../images/{name}/{img.name}', label])
    (tmp_path / 'data' / 'my_classes.txt').write_text('\n'.join(classes) + '\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    for command in RUN_RE.findall(text):
        tokens = shlex.split(command)
        assert tokens[:2] == ['PYTHONPATH=.', 'python'], command
        tool, args = tokens[2], tokens[3:]
        config_text = (tmp_path / args[0]).read_text()
        argv = args + options(overrides_for(config_text, folder)) + ['default_hooks.progress.disable=True']
        result = load_tool(tool.split('/')[-1][:-3]).main(argv)
        if tool == 'tools/test.py':
            assert result['num_samples'] == 6, command
        else:
            assert result == 0, command  # ablate's exit code

    preds = [json.loads(line) for line in
             (tmp_path / 'work_dirs/my_project/tpt_consistency/predictions.jsonl').read_text().splitlines()]
    assert all('ViewConsistencyLoss' in p['loss'] for p in preds)
    table = (tmp_path / 'work_dirs/ablate/tpt_consistency/ablation.csv').read_text()
    assert 'tta.losses.1.weight' in table.splitlines()[0] and len(table.splitlines()) == 4
    small = json.loads((tmp_path / 'work_dirs/my_project/tpt_small_clip/metrics.json').read_text())
    assert small['backbone'] == 'my-small-clip'
    fixed = (tmp_path / 'work_dirs/my_project/tpt_fixed_temperature/config.py').read_text()
    assert "FixedTemperatureOpenCLIP" in fixed


@pytest.mark.parametrize('name', ['ViewConsistencyLoss'])
def test_view_consistency_example_is_a_kl(name, tmp_path, monkeypatch):
    """The doc's loss is what it claims: zero for identical views, positive otherwise."""
    import torch
    files = dict(FILE_RE.findall(DOC.read_text()))
    (tmp_path / 'ex_losses.py').write_text(files['my_project/losses.py'].replace(
        '@LOSSES.register_module()', '@LOSSES.register_module(force=True)'))
    monkeypatch.syspath_prepend(str(tmp_path))
    from ex_losses import ViewConsistencyLoss  # noqa: F401 (registered)

    from promptsync.tta.context import TTAContext
    loss = ViewConsistencyLoss()
    same = TTAContext(0, 0, torch.zeros(2, 3, 2, 2), None, logits=torch.tensor([[1.0, 2.0], [1.0, 2.0]]),
                      selected=torch.tensor([0, 1]))
    diff = TTAContext(0, 0, torch.zeros(2, 3, 2, 2), None, logits=torch.tensor([[3.0, 0.0], [0.0, 3.0]]),
                      selected=torch.tensor([0, 1]))
    assert float(loss(same)) == pytest.approx(0.0, abs=1e-7) and float(loss(diff)) > 0.1
