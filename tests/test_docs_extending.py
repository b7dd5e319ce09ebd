"""docs/extending.md runs as written: its files are saved where it says, its commands are executed literally (the
same strings, through the shell, in a copy of the repository root: no swapped config, model or data), and what each
run wrote is checked — against an invariant of the doc's claims where there is one.

The copy links the repository's top-level entries (configs, tools, promptsync, ...) into a temp folder, writes the
doc's files there, and gives it a ``.venv/bin/python`` that runs this interpreter. The environment is the defaults
the doc relies on: ``PROMPTSYNC_DATA`` / ``PROMPTSYNC_CKPT`` / ``PYTHONPATH`` unset (images rendered into the copy's
``./data``), ``HF_HUB_OFFLINE=1``, and a private ``PROMPTSYNC_CACHE``. All commands run once per session (module
fixture), two at a time.
"""
from __future__ import annotations

import ast
import csv
import inspect
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from .tools.helpers import ROOT

DOC = ROOT / 'docs' / 'extending.md'
TEXT = DOC.read_text()
FILE_RE = re.compile(r'<!-- example-file: (\S+) -->\n```\w*\n(.*?)```', re.S)
RUN_RE = re.compile(r'<!-- example-run -->\n```bash\n(.*?)\n```', re.S)
CONTRACT_RE = re.compile(r'<!-- backbone-contract -->\n```python\n(.*?)```', re.S)
FILES = dict(FILE_RE.findall(TEXT))
COMMANDS = RUN_RE.findall(TEXT)
#: top-level entries of the checkout that are outputs or private state, not part of a fresh clone
NOT_COPIED = {'.git', '.venv', 'data', 'work_dirs', 'checkpoints', 'my_project', '.pytest_cache', '.cache'}
N_IMAGES = 20  # data.dataset.per_class=1 over the 20 shapes classes, as the doc's configs say
#: a results-table line of tools/test.py: run, dataset, method, prompts, n, top1, top5, ...
RESULT_LINE = re.compile(r'^(my_project/\w+)\s+\S+\s+\S+\s+\S+\s+(\d+)\s+([\d.]+)\s', re.M)
#: a line of tools/ablate.py's table: the swept weight, then top1
ABLATION_LINE = re.compile(r'^(\d+(?:\.\d+)?)\s+([\d.]+)\s+[\d.]+\s+.*\s+ok$', re.M)


# ----------------------------------------------------------------------------------------------- the doc's shape
def test_every_marker_is_an_example_and_every_command_is_executed():
    """No command on the page escapes the test: every bash block is an example-run, every marker has its block."""
    assert TEXT.count('<!-- example-run -->') == len(COMMANDS) == TEXT.count('```bash') >= 9
    assert TEXT.count('<!-- example-file:') == len(FILE_RE.findall(TEXT)) == len(FILES) >= 14
    for command in COMMANDS:
        assert '\n' not in command and command.startswith('PYTHONPATH=. .venv/bin/python '), command
    for section in ('## A custom loss', '## A backbone', '## A dataset', '## An update schedule', '## A hook',
                    '## A TTA method', '## Paths in a config'):
        assert section in TEXT


def test_configs_are_built_on_the_embedded_benchmark():
    configs = {k: v for k, v in FILES.items() if k.endswith('.py') and '_base_' in v}
    assert len(configs) == 7
    for name, text in configs.items():
        assert re.search(r"_base_ = \['\.\./configs/shapes/\w+\.py'\]", text), name
        assert 'imagenet' not in text.lower() and 'vit_b16' not in text, name


# ----------------------------------------------------------------------------------------------- running it all
def make_copy(dest: Path) -> Path:
    for entry in ROOT.iterdir():
        if entry.name not in NOT_COPIED:
            (dest / entry.name).symlink_to(entry)
    python = dest / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    for rel, content in FILES.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return dest


@pytest.fixture(scope='module')
def doc_runs(tmp_path_factory):
    """``(copy, [(command, CompletedProcess)])`` after every command of the page ran, in page order."""
    copy = make_copy(tmp_path_factory.mktemp('clone'))
    env = {k: v for k, v in os.environ.items() if k not in ('PROMPTSYNC_DATA', 'PROMPTSYNC_CKPT', 'PYTHONPATH')}
    env.update(HF_HUB_OFFLINE='1', PROMPTSYNC_CACHE=str(tmp_path_factory.mktemp('cache')))
    def run(command):
        return subprocess.run(command, shell=True, cwd=copy, env=env, capture_output=True, text=True, timeout=900)

    # two at a time (a run's start is single-threaded imports); a command that is not a tool (a script writing
    # files, like the CSV maker) waits for the ones before it and the ones after it wait for it
    results = {}
    with ThreadPoolExecutor(2) as pool:
        pending = {}
        for i, command in enumerate(COMMANDS):
            barrier = ' tools/' not in command
            if barrier:
                results.update({j: f.result() for j, f in pending.items()})
                pending = {}
                results[i] = run(command)
            else:
                pending[i] = pool.submit(run, command)
        results.update({j: f.result() for j, f in pending.items()})
    logs = copy / 'command_outputs'  # for a failing test's reader: what each command printed
    logs.mkdir()
    for i, command in enumerate(COMMANDS):
        (logs / f'{i}.txt').write_text(f'$ {command}\nexit {results[i].returncode}\n{results[i].stdout}\n'
                                       f'--- stderr\n{results[i].stderr}')
    return copy, [(command, results[i]) for i, command in enumerate(COMMANDS)]


def work_dir(copy: Path, config: str) -> Path:
    return copy / 'work_dirs' / 'my_project' / config


def metrics(copy: Path, config: str) -> dict:
    return json.loads((work_dir(copy, config) / 'metrics.json').read_text())


def predictions(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / 'predictions.jsonl').read_text().splitlines()]


def test_every_command_succeeds_and_every_run_has_metrics(doc_runs):
    copy, runs = doc_runs
    for command, proc in runs:
        assert proc.returncode == 0, f'{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        if ' tools/test.py ' in command:
            config = command.split()[-1]
            m = json.loads((copy / 'work_dirs' / Path(config).with_suffix('') / 'metrics.json').read_text())
            assert 0 <= m['metrics']['top1'] <= 100 and m['num_samples'] == N_IMAGES, command
            assert m['num_skipped'] == 0 and m['num_nonfinite'] == 0, command
            assert re.search(rf'^{Path(config).with_suffix("")}\s.*\s{N_IMAGES}\s', proc.stdout, re.M), proc.stdout
    # nothing was downloaded or written outside the copy: the images are in ./data of the copy
    assert len(list((copy / 'data' / 'synthetic_shapes').rglob('*.png'))) == 2 * N_IMAGES  # sketch + cartoon


def test_the_loss_is_in_every_prediction(doc_runs):
    copy, _ = doc_runs
    preds = predictions(work_dir(copy, 'tpt_consistency'))
    assert len(preds) == N_IMAGES
    assert all(p['loss']['ViewConsistencyLoss'] >= 0 and 'MarginalEntropyLoss' in p['loss'] for p in preds)  # a KL
    assert any(p['loss']['ViewConsistencyLoss'] > 1e-6 for p in preds)  # 3 selected views: not trivially zero


def test_the_ablation_sweeps_the_weight_and_its_cells_are_the_single_runs(doc_runs):
    copy, _ = doc_runs
    folder = copy / 'work_dirs' / 'ablate' / 'tpt_consistency'
    rows = list(csv.DictReader((folder / 'ablation.csv').open()))
    assert [float(r['tta.losses.1.weight']) for r in rows] == [0.0, 0.5, 2.0]
    cells = {float(r['tta.losses.1.weight']): r for r in rows}
    # the 0.5 cell is the tools/test.py run of the same config; the 0 cell is plain TPT = the json-backbone run
    assert float(cells[0.5]['top1']) == metrics(copy, 'tpt_consistency')['metrics']['top1']
    assert float(cells[0.0]['top1']) == metrics(copy, 'tpt_json_backbone')['metrics']['top1']
    cells = {float(c.name.split('=')[1].split('__')[0]): [p['pred'] for p in predictions(c)]
             for c in (folder / 'cells').iterdir()}
    assert [p['pred'] for p in predictions(work_dir(copy, 'tpt_json_backbone'))] == cells[0.0]
    assert cells[0.0] == cells[0.5] == cells[2.0]  # the doc: "not one of the 20 predictions" changes
    assert (folder / 'ablation.md').read_text().count('\n|') >= 4


def test_the_json_backbone_is_the_one_named(doc_runs):
    copy, _ = doc_runs
    m = metrics(copy, 'tpt_json_backbone')
    assert m['backbone'] == 'my-shapes-vit' and m['pretrained'].endswith('ps-shapes-vit.safetensors')


def test_the_backbone_subclass_is_used(doc_runs):
    copy, _ = doc_runs
    resolved = (work_dir(copy, 'tpt_fixed_temperature') / 'config.py').read_text()
    assert "type='FixedTemperatureOpenCLIP'" in resolved and 'scale=100.0' in resolved
    # a sharper softmax: the fixed scale (100 > the learned 31.3) makes the predictions more confident
    sharp = [p['confidence'] for p in predictions(work_dir(copy, 'tpt_fixed_temperature'))]
    learned = [p['confidence'] for p in predictions(work_dir(copy, 'tpt_json_backbone'))]
    assert sum(sharp) > sum(learned)
    assert preds(copy, 'tpt_fixed_temperature') == preds(copy, 'tpt_json_backbone')  # the doc: same predictions


def preds(copy: Path, config: str) -> list[int]:
    return [p['pred'] for p in predictions(work_dir(copy, config))]


def test_relative_paths_are_relative_to_the_working_directory(doc_runs, monkeypatch, capsys):
    """The doc: a relative path is opened from the cwd, a {{ fileDirname }} one from the config's folder."""
    from promptsync.utils.config import load_config

    from .tools.helpers import load_tool
    copy, _ = doc_runs
    tool = load_tool('test')

    def weights_status(config):
        capsys.readouterr()
        code = tool.main([config, '--check'])
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith('backbone weights'))
        return code, line.split()[-1] if 'missing' not in line else 'missing'
    monkeypatch.chdir(copy)
    assert weights_status('my_project/tpt_json_backbone.py') == (0, 'found')
    monkeypatch.chdir(copy / 'my_project')
    assert weights_status('tpt_json_backbone.py') == (1, 'missing')  # 'promptsync/...' is not under my_project/
    json_path = load_config('tpt_json_backbone.py').model.backbone.model_config
    assert json_path == str(copy / 'my_project' / 'my-shapes-vit.json')  # {{ fileDirname }}: absolute, found


def test_the_csv_lists_the_benchmark_images(doc_runs):
    copy, runs = doc_runs
    out = next(proc.stdout for command, proc in runs if 'make_shapes_csv' in command)
    assert out.strip() == f'{N_IMAGES} images of 20 classes -> my_project/data/shapes_cartoon.csv'
    data = copy / 'my_project' / 'data'
    rows = list(csv.reader((data / 'shapes_cartoon.csv').open()))
    from promptsync.benchmarks.shapes import SyntheticShapes, class_names
    shapes = SyntheticShapes(root=str(copy / 'data' / 'synthetic_shapes'), domain='cartoon', split='test',
                             per_class=1)
    assert [(os.path.realpath(data / r[0]), int(r[1])) for r in rows] == [
        (os.path.realpath(d.path), d.label) for d in shapes.samples]
    assert (data / 'shapes_classes.txt').read_text().split('\n')[:-1] == list(class_names())
    preds = predictions(work_dir(copy, 'tpt_my_list'))
    assert [os.path.realpath(p['path']) for p in preds] == [os.path.realpath(d.path) for d in shapes.samples]
    assert metrics(copy, 'tpt_my_list')['dataset'] == 'CsvImageList'


def test_the_update_schedule_is_recorded(doc_runs):
    copy, _ = doc_runs
    m = metrics(copy, 'maple_vision_then_text')
    assert m['method_stats']['update'] == 'VisionThenText' and m['prompt_learner'] == 'MaPLe'


def test_the_hook_logs_its_count(doc_runs):
    copy, runs = doc_runs
    found = re.findall(r'KeepOriginalView: view 0 added for (\d+) images',
                       (work_dir(copy, 'tpt_keep_original') / 'log.txt').read_text())
    assert len(found) == 1 and 0 <= int(found[0]) <= N_IMAGES
    changed = sum(a != b for a, b in zip(preds(copy, 'tpt_keep_original'), preds(copy, 'tpt_json_backbone')))
    assert changed == 1  # the doc: "adding it changed one prediction"
    proc = next(proc for command, proc in runs if 'tpt_keep_original' in command)
    assert f'KeepOriginalView: view 0 added for {found[0]} images' in proc.stdout + proc.stderr


def test_the_method_summary(doc_runs):
    copy, _ = doc_runs
    m = metrics(copy, 'entropy_ensemble')
    s = m['method_stats']
    assert m['method'] == 'EntropyWeightedEnsemble' and s['samples'] == N_IMAGES and s['temperature'] == 0.5
    assert 1.0 <= s['mean_effective_views'] <= 20 and 0 <= s['changed_vs_original_view'] <= N_IMAGES


def test_the_outputs_shown_are_the_runs(doc_runs):
    """The tables pasted into the doc are what the commands print (run, n, top1 of every results line)."""
    copy, runs = doc_runs
    shown = {name: (int(n), float(top1)) for name, n, top1 in RESULT_LINE.findall(TEXT)}
    printed = {}
    for _, proc in runs:
        printed.update({name: (int(n), float(top1)) for name, n, top1 in RESULT_LINE.findall(proc.stdout)})
    assert len(shown) == 7 and shown == {k: printed.get(k) for k in shown}
    ablate = next(proc.stdout for command, proc in runs if 'tools/ablate.py' in command)
    assert ABLATION_LINE.findall(TEXT) == ABLATION_LINE.findall(ablate) and len(ABLATION_LINE.findall(TEXT)) == 3
    csv_line = next(proc.stdout for command, proc in runs if 'make_shapes_csv' in command).strip()
    assert csv_line == '20 images of 20 classes -> my_project/data/shapes_cartoon.csv' and csv_line in TEXT
    added = re.search(r'KeepOriginalView: view 0 added for (\d+) images', TEXT).group(0)
    assert added in (work_dir(copy, 'tpt_keep_original') / 'log.txt').read_text()
    summary = json.loads(re.search(r'"method_stats": (\{.*?\})', TEXT).group(1))
    assert summary == metrics(copy, 'entropy_ensemble')['method_stats']


# ----------------------------------------------------------------------------------------------- the pieces alone
def load_example(name: str, tmp_path, monkeypatch, module: str):
    """The doc's file ``name`` as a module, its registrations forced (other tests may have registered it)."""
    (tmp_path / f'{module}.py').write_text(re.sub(r'register_module\(\)', 'register_module(force=True)', FILES[name]))
    monkeypatch.syspath_prepend(str(tmp_path))
    return __import__(module)


def test_view_consistency_example_is_a_kl(tmp_path, monkeypatch):
    """The doc's loss is what it claims: zero for identical views, the KL to the mean otherwise."""
    mod = load_example('my_project/losses.py', tmp_path, monkeypatch, 'ex_losses')
    from promptsync.tta.context import TTAContext
    loss = mod.ViewConsistencyLoss()
    same = TTAContext(0, 0, torch.zeros(2, 3, 2, 2), None, logits=torch.tensor([[1.0, 2.0], [1.0, 2.0]]),
                      selected=torch.tensor([0, 1]))
    diff = TTAContext(0, 0, torch.zeros(2, 3, 2, 2), None, logits=torch.tensor([[3.0, 0.0], [0.0, 3.0]]),
                      selected=torch.tensor([0, 1]))
    p = torch.tensor([3.0, 0.0]).softmax(0)  # hand computation: both views are KL(p || (0.5, 0.5)) away
    expected = float((p * (p / 0.5).log()).sum())
    assert float(loss(same)) == pytest.approx(0.0, abs=1e-7) and float(loss(diff)) == pytest.approx(expected)


class _StubModel:
    """``PromptedCLIP``'s three calls a PerSampleMethod makes, with fixed per-view logits."""

    def __init__(self, logits):
        self.view_logits = logits
        self.backbone = type('B', (), {'device': torch.device('cpu')})()

    def text_features(self):
        return torch.zeros(self.view_logits.shape[1], 1)

    def image_features(self, views):
        return torch.arange(views.shape[0], dtype=torch.float32)[:, None]

    def logits(self, image_features, text_features):
        return self.view_logits[image_features[:, 0].long()]


def test_entropy_weighted_ensemble_example_is_what_it_says(tmp_path, monkeypatch):
    mod = load_example('my_project/methods.py', tmp_path, monkeypatch, 'ex_methods')
    logits = torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # uniform, confident 0, mild 1
    views = torch.zeros(3, 3, 4, 4)
    probs = logits.softmax(-1)
    ent = -(probs * probs.log()).sum(-1)
    for temperature in (0.01, 0.5, 100.0):
        method = mod.EntropyWeightedEnsemble(_StubModel(logits), temperature=temperature)
        result = method.process_sample(views, label=0, index=0)
        w = [float(torch.exp(-e / temperature)) for e in ent]   # a naive re-computation of the formula
        expected = sum(wi * probs[i] for i, wi in enumerate(w)) / sum(w)
        assert torch.allclose(result.logits.softmax(-1), expected, atol=1e-6)
        assert method.summary()['samples'] == 1
    assert method.summary()['mean_effective_views'] == pytest.approx(3.0, abs=0.05)  # temperature 100: uniform
    cold = mod.EntropyWeightedEnsemble(_StubModel(logits), temperature=0.01)
    assert cold.process_sample(views, 0, 0).pred == 0 and cold.summary()['mean_effective_views'] == pytest.approx(1)
    from promptsync.errors import ConfigError
    with pytest.raises(ConfigError, match='temperature'):
        mod.EntropyWeightedEnsemble(_StubModel(logits), temperature=0)


# ----------------------------------------------------------------------------------------------- backbone contract
def contract() -> tuple[dict[str, str], dict[str, list[str]]]:
    """``({attribute: annotation}, {method: [parameter names]})`` of the doc's contract block."""
    tree = ast.parse(CONTRACT_RE.search(TEXT).group(1))
    cls = tree.body[0]
    attrs = {n.target.id: ast.unparse(n.annotation) for n in cls.body if isinstance(n, ast.AnnAssign)}
    methods = {n.name: [a.arg for a in n.args.args + n.args.kwonlyargs]
               for n in cls.body if isinstance(n, ast.FunctionDef)}
    return attrs, methods


def test_the_backbone_contract_is_openclips():
    from promptsync.models.backbones import OpenCLIP
    attrs, methods = contract()
    bb = OpenCLIP('ps-shapes-vit', precision='fp32',
                  pretrained=str(ROOT / 'promptsync/benchmarks/shapes/assets/ps-shapes-vit.safetensors'))
    for name in attrs:
        assert hasattr(bb, name), name
    for name, params in methods.items():
        assert list(inspect.signature(getattr(OpenCLIP, name)).parameters) == params, name
    # the shapes the doc states, on ps-shapes-vit: L = 16, D = W = E = 64, S = 32, T = 65 + n
    ids = bb.tokenize(['a photo of a star.', 'a star.'])
    assert ids.dtype == torch.int64 and ids.shape == (2, bb.context_length) == (2, 16)
    emb = bb.embed_tokens(ids)
    assert emb.shape == (2, 16, bb.text_width) == (2, 16, 64)
    deep = {1: torch.zeros(2, 64)}
    assert bb.encode_text(ids, emb, deep, torch.tensor([[1, 2], [1, 2]]), normalize=True).shape == (2, bb.embed_dim)
    images = torch.randn(3, 3, 32, 32)
    with bb.taps('vision', [0, 3]) as taps:
        out = bb.encode_image(images, torch.zeros(2, bb.vision_width), {2: torch.zeros(3, 2, 64)})
    assert out.shape == (3, 64) and taps[3].shape == (3, 65 + 2, 64) and set(taps.tokens()) == {0, 3}
    assert bb.logit_scale().dim() == 0 and bb.logit_bias() is None
    assert bb.tokenizer.encode('a photo') == ids[0, 1:3].tolist()  # BPE ids without start/end tokens


def backbone_uses() -> set[str]:
    """Every ``<...>backbone.X`` (and the ``bb = self.backbone`` alias) the package reads, outside the backbones
    and the tiny CLIP's pretraining (which trains ``OpenCLIP.model`` itself)."""
    skip = {ROOT / 'promptsync/models/backbones', ROOT / 'promptsync/benchmarks/shapes/pretrain.py'}
    used = set()
    for path in (ROOT / 'promptsync').rglob('*.py'):
        if any(path == s or s in path.parents for s in skip):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, 'id', None)
            if name in ('backbone', 'bb', '_backbone'):
                used.add(node.attr)
    return used


def test_the_contract_lists_everything_the_package_uses():
    attrs, methods = contract()
    documented = set(attrs) | set(methods) | {'named_parameters', 'to', 'train', 'eval'}  # torch.nn.Module's own
    dict_uses = {'get'}  # engine/resources.py reads the backbone's *config* dict
    assert backbone_uses() - dict_uses <= documented, sorted(backbone_uses() - dict_uses - documented)
