"""docs/extending.md runs as written: its files are saved where it says, its commands are executed literally (the
same strings, through the shell, in a copy of the repository root: no swapped config, model or data), and what each
run wrote is checked — against an invariant of the doc's claims where there is one, and against the outputs the doc
shows.

The copy links the repository's top-level entries (configs, tools, promptsync, ...) into a temp folder, writes the
doc's files there, and gives it a ``.venv/bin/python`` that runs this interpreter. The environment is the defaults
the doc relies on: ``PROMPTSYNC_DATA`` / ``PROMPTSYNC_CKPT`` / ``PYTHONPATH`` unset (images rendered into the copy's
``./data``), ``HF_HUB_OFFLINE=1``, and a private ``PROMPTSYNC_CACHE``. Each command starts a python process (~4 CPU
seconds of imports), so the page costs ~130 CPU-seconds: the ``fast`` fixture runs four commands (:data:`FAST`) and
``test_the_other_examples_run`` the other five, in the same copy; both are in the default suite (CI runs every
command of the page).
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


def key(command: str) -> str:
    """``'test:tpt_consistency'`` for ``... tools/test.py my_project/tpt_consistency.py``; a script's stem otherwise."""
    tokens = command.split()
    script = Path(tokens[2])
    return f'{script.stem}:{Path(tokens[3]).stem}' if script.parts[0] == 'tools' else script.stem


KEYS = [key(c) for c in COMMANDS]
#: the commands the default (fast) suite runs: a json backbone, the CSV maker and the CSV dataset, a TTA method
#: (~45 CPU-seconds); test_the_other_examples_run runs the others (the loss, its ablation, the backbone subclass,
#: the update schedule, the hook: ~85 CPU-seconds), in the same copy
FAST = ['test:tpt_json_backbone', 'make_shapes_csv', 'test:tpt_my_list', 'test:entropy_ensemble']


class DocCommands:
    """Runs the page's commands on demand, each once, in page order, two at a time (a run starts with
    single-threaded imports); a command that is not a tool (a script writing files, like the CSV maker) waits for
    the ones before it, and the ones after it wait for it."""

    def __init__(self, copy: Path, env: dict):
        self.copy, self.env, self.done = copy, env, {}

    def _run(self, i: int) -> subprocess.CompletedProcess:
        proc = subprocess.run(COMMANDS[i], shell=True, cwd=self.copy, env=self.env, capture_output=True, text=True,
                              timeout=900)
        logs = self.copy / 'command_outputs'  # for a failing test's reader: what each command printed
        logs.mkdir(exist_ok=True)
        (logs / f'{i}.txt').write_text(f'$ {COMMANDS[i]}\nexit {proc.returncode}\n{proc.stdout}\n--- stderr\n'
                                       f'{proc.stderr}')
        return proc

    def __call__(self, *keys: str) -> dict[str, subprocess.CompletedProcess]:
        """``{key: finished process}`` of the commands named (running those not run yet)."""
        todo = [i for i, k in enumerate(KEYS) if k in keys and k not in self.done]
        with ThreadPoolExecutor(2) as pool:
            pending = {}
            for i in todo:
                if KEYS[i].count(':') == 0:  # a barrier
                    self.done.update({KEYS[j]: f.result() for j, f in pending.items()})
                    pending = {}
                    self.done[KEYS[i]] = self._run(i)
                else:
                    pending[i] = pool.submit(self._run, i)
            self.done.update({KEYS[j]: f.result() for j, f in pending.items()})
        missing = [k for k in keys if k not in self.done]
        assert not missing, f'the doc has no command {missing}; it has {KEYS}'
        for k in keys:
            proc = self.done[k]
            assert proc.returncode == 0, f'{COMMANDS[KEYS.index(k)]}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        return {k: self.done[k] for k in keys}


@pytest.fixture(scope='module')
def doc(tmp_path_factory) -> DocCommands:
    """A fresh copy of the repository root with the doc's files, and its commands (run on demand)."""
    copy = make_copy(tmp_path_factory.mktemp('clone'))
    env = {k: v for k, v in os.environ.items() if k not in ('PROMPTSYNC_DATA', 'PROMPTSYNC_CKPT', 'PYTHONPATH')}
    env.update(HF_HUB_OFFLINE='1', PROMPTSYNC_CACHE=str(tmp_path_factory.mktemp('cache')))
    return DocCommands(copy, env)


@pytest.fixture(scope='module')
def fast(doc) -> Path:
    doc(*FAST)
    return doc.copy


def work_dir(copy: Path, config: str) -> Path:
    return copy / 'work_dirs' / 'my_project' / config


def metrics(copy: Path, config: str) -> dict:
    return json.loads((work_dir(copy, config) / 'metrics.json').read_text())


def predictions(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / 'predictions.jsonl').read_text().splitlines()]


def check_runs(copy: Path, procs: dict) -> None:
    """Every tools/test.py run: 20 images, a top-1 in [0, 100], nothing skipped, its line in the printed table; and
    the results lines the doc shows for these runs are the printed ones (run, n, top1)."""
    for k, proc in procs.items():
        if not k.startswith('test:'):
            continue
        name = 'my_project/' + k.split(':')[1]
        m = metrics(copy, k.split(':')[1])
        assert 0 <= m['metrics']['top1'] <= 100 and m['num_samples'] == N_IMAGES, k
        assert m['num_skipped'] == 0 and m['num_nonfinite'] == 0, k
        printed = {n: (int(c), float(t)) for n, c, t in RESULT_LINE.findall(proc.stdout)}
        assert printed[name] == (N_IMAGES, round(m['metrics']['top1'], 2))
        assert SHOWN[name] == printed[name], f'the doc shows {SHOWN[name]} for {name}, the run printed {printed[name]}'


SHOWN = {name: (int(n), float(top1)) for name, n, top1 in RESULT_LINE.findall(TEXT)}


def preds(copy: Path, config: str) -> list[int]:
    return [p['pred'] for p in predictions(work_dir(copy, config))]


def test_every_run_of_the_page_has_its_output_shown():
    assert sorted(SHOWN) == sorted('my_project/' + k.split(':')[1] for k in KEYS if k.startswith('test:'))
    assert set(FAST) <= set(KEYS) and len(KEYS) == len(set(KEYS)) == 9


# -------------------------------------------------------------------------------- fast: in the default suite
def test_the_fast_examples_run(fast, doc):
    check_runs(fast, doc(*FAST))
    # nothing was downloaded or written outside the copy: the images are in ./data of the copy
    assert len(list((fast / 'data' / 'synthetic_shapes').rglob('*.png'))) == 2 * N_IMAGES  # sketch + cartoon


def test_the_json_backbone_is_the_one_named(fast):
    m = metrics(fast, 'tpt_json_backbone')
    assert m['backbone'] == 'my-shapes-vit' and m['pretrained'].endswith('ps-shapes-vit.safetensors')


def test_relative_paths_are_relative_to_the_working_directory(fast, monkeypatch, capsys):
    """The doc: a relative path is opened from the cwd, a {{ fileDirname }} one from the config's folder."""
    from promptsync.utils.config import load_config

    from .tools.helpers import load_tool
    tool = load_tool('test')

    def weights_status(config):
        capsys.readouterr()
        code = tool.main([config, '--check'])
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith('backbone weights'))
        return code, 'missing' if 'missing' in line else line.split()[-1]
    monkeypatch.chdir(fast)
    assert weights_status('my_project/tpt_json_backbone.py') == (0, 'found')
    monkeypatch.chdir(fast / 'my_project')
    assert weights_status('tpt_json_backbone.py') == (1, 'missing')  # 'promptsync/...' is not under my_project/
    json_path = load_config('tpt_json_backbone.py').model.backbone.model_config
    assert json_path == str(fast / 'my_project' / 'my-shapes-vit.json')  # {{ fileDirname }}: absolute, found


def test_the_csv_lists_the_benchmark_images(fast, doc):
    out = doc('make_shapes_csv')['make_shapes_csv'].stdout.strip()
    assert out == f'{N_IMAGES} images of 20 classes -> my_project/data/shapes_cartoon.csv' and out in TEXT
    data = fast / 'my_project' / 'data'
    rows = list(csv.reader((data / 'shapes_cartoon.csv').open()))
    from promptsync.benchmarks.shapes import SyntheticShapes, class_names
    shapes = SyntheticShapes(root=str(fast / 'data' / 'synthetic_shapes'), domain='cartoon', split='test',
                             per_class=1)
    assert [(os.path.realpath(data / r[0]), int(r[1])) for r in rows] == [
        (os.path.realpath(d.path), d.label) for d in shapes.samples]
    assert (data / 'shapes_classes.txt').read_text().split('\n')[:-1] == list(class_names())
    got = predictions(work_dir(fast, 'tpt_my_list'))
    assert [os.path.realpath(p['path']) for p in got] == [os.path.realpath(d.path) for d in shapes.samples]
    assert metrics(fast, 'tpt_my_list')['dataset'] == 'CsvImageList'


def test_the_method_summary(fast):
    m = metrics(fast, 'entropy_ensemble')
    s = m['method_stats']
    assert m['method'] == 'EntropyWeightedEnsemble' and s['samples'] == N_IMAGES and s['temperature'] == 0.5
    assert 1.0 <= s['mean_effective_views'] <= 20 and 0 <= s['changed_vs_original_view'] <= N_IMAGES
    assert json.loads(re.search(r'"method_stats": (\{.*?\})', TEXT).group(1)) == s  # the summary the doc shows


# -------------------------------------------------------------------------------- the other commands
def test_the_other_examples_run(fast, doc):
    """The loss and its ablation, the backbone subclass, the update schedule and the hook (~85 CPU-seconds)."""
    others = [k for k in KEYS if k not in FAST]
    procs = doc(*others)
    check_runs(fast, procs)
    copy = fast

    # the loss: in every prediction, a KL (>= 0), not trivially zero with 2 selected views
    got = predictions(work_dir(copy, 'tpt_consistency'))
    assert all(p['loss']['ViewConsistencyLoss'] >= 0 and 'MarginalEntropyLoss' in p['loss'] for p in got)
    assert any(p['loss']['ViewConsistencyLoss'] > 1e-6 for p in got)

    # the ablation: the swept column; the 0.5 cell is the tools/test.py run, the 0 cell plain TPT = the json run
    folder = copy / 'work_dirs' / 'ablate' / 'tpt_consistency'
    rows = {float(r['tta.losses.1.weight']): r for r in csv.DictReader((folder / 'ablation.csv').open())}
    assert list(rows) == [0.0, 0.5, 2.0]
    assert float(rows[0.5]['top1']) == metrics(copy, 'tpt_consistency')['metrics']['top1']
    cells = {float(c.name.split('=')[1].split('__')[0]): [p['pred'] for p in predictions(c)]
             for c in (folder / 'cells').iterdir()}
    assert preds(copy, 'tpt_json_backbone') == cells[0.0]
    assert cells[0.0] == cells[0.5] == cells[2.0]  # the doc: "not one of the 20 predictions" changes
    ablate = procs['ablate:tpt_consistency'].stdout
    assert ABLATION_LINE.findall(TEXT) == ABLATION_LINE.findall(ablate) and len(ABLATION_LINE.findall(TEXT)) == 3

    # the backbone subclass: its type and scale; the same predictions, sharper (the fixed 100 > the learned 31.3)
    resolved = (work_dir(copy, 'tpt_fixed_temperature') / 'config.py').read_text()
    assert "type='FixedTemperatureOpenCLIP'" in resolved and 'scale=100.0' in resolved
    sharp = [p['confidence'] for p in predictions(work_dir(copy, 'tpt_fixed_temperature'))]
    learned = [p['confidence'] for p in predictions(work_dir(copy, 'tpt_json_backbone'))]
    assert sum(sharp) > sum(learned) and preds(copy, 'tpt_fixed_temperature') == preds(copy, 'tpt_json_backbone')

    # the update schedule is the one recorded
    m = metrics(copy, 'maple_vision_then_text')
    assert m['method_stats']['update'] == 'VisionThenText' and m['prompt_learner'] == 'MaPLe'

    # the hook: its line in log.txt and on the console, the count the doc shows, one prediction changed
    log = (work_dir(copy, 'tpt_keep_original') / 'log.txt').read_text()
    found = re.findall(r'KeepOriginalView: view 0 added for (\d+) images', log)
    assert len(found) == 1 and 0 <= int(found[0]) <= N_IMAGES
    assert f'KeepOriginalView: view 0 added for {found[0]} images' in procs['test:tpt_keep_original'].stderr
    assert re.search(r'KeepOriginalView: view 0 added for (\d+) images', TEXT).group(1) == found[0]
    changed = sum(a != b for a, b in zip(preds(copy, 'tpt_keep_original'), preds(copy, 'tpt_json_backbone')))
    assert changed == 1  # the doc: "adding it changed one prediction"


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
