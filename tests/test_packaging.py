"""The wheel ships every file under promptsync/ (data folders included, caches never), and the package installed
from it works outside the checkout: the embedded shapes benchmark, the published results, the tiny CLIP asset."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMOKE = r'''
import importlib, json, sys
from pathlib import Path

import torch

import promptsync
pkg = Path(promptsync.__file__).resolve().parent
assert pkg == Path(sys.argv[1]).resolve() / 'promptsync', f'promptsync imported from {pkg}'

from promptsync.benchmarks.shapes import SyntheticShapes, class_names
shapes = SyntheticShapes('shapes', split='test', per_class=1, workers=1)
assert len(shapes.samples) == len(class_names()) == 20 and all(Path(d.path).is_file() for d in shapes.samples)

tables = json.loads((pkg / 'evaluation' / 'data' / 'published_results.json').read_text())
for name in ('promptsync.experiments.suite_tables', 'promptsync.apis.suite_tables'):  # moving during a refactor
    try:
        suite_tables = importlib.import_module(name)
    except ImportError:
        continue
    assert suite_tables.published() == tables
    break

from promptsync.models.backbones import OpenCLIP
clip = OpenCLIP('ps-shapes-vit', pretrained=str(pkg / 'benchmarks/shapes/assets/ps-shapes-vit.safetensors'),
                precision='fp32')
with torch.no_grad():
    text = clip.encode_text(clip.tokenize(['a photo of a circle']))
assert text.shape == (1, clip.embed_dim) and torch.isfinite(text).all()
print('smoke ok')
'''


def run(cmd, **kwargs) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    shown = ' '.join(str(c) for c in cmd)[:300]
    assert proc.returncode == 0, f'{shown} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout


def git_files(*options) -> set[str]:
    out = run(['git', '-C', ROOT, 'ls-files', '-z', *options, '--', 'promptsync/'])
    return set(filter(None, out.split('\0')))


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp('wheel')
    # build/ and the .egg-info go to tmp, not the checkout: files left in a stale build/lib would end up in the wheel
    config = tmp / 'build.cfg'
    config.write_text(f'[build]\nbuild_base = {tmp / "build"}\n[egg_info]\negg_base = {tmp}\n')
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q',
         '-w', tmp / 'dist', ROOT], env=dict(os.environ, DIST_EXTRA_CONFIG=str(config)))
    (path,) = (tmp / 'dist').glob('promptsync-*.whl')
    return path


def test_wheel_ships_every_file_under_promptsync(wheel):
    if shutil.which('git') is None:
        pytest.skip('git is not installed: cannot list the tracked files')
    top = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--show-toplevel'], capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f'{ROOT} is not a git checkout (no .git): cannot list the tracked files')
    members = set(zipfile.ZipFile(wheel).namelist())
    shipped = {m for m in members if m.startswith('promptsync/')}
    assert all(m.startswith('promptsync-') and '.dist-info/' in m for m in members - shipped), members - shipped
    tracked = {f for f in git_files() if (ROOT / f).is_file()}  # a tracked file deleted, not yet committed, can't ship
    not_ignored = git_files('--cached', '--others', '--exclude-standard')  # tracked + new files not yet added
    missing, ignored = sorted(tracked - shipped), sorted(shipped - not_ignored)
    assert not missing, f'tracked files missing from the wheel: {missing}'
    assert not ignored, f'files git ignores are in the wheel: {ignored}'
    caches = [m for m in shipped if '__pycache__' in m or m.endswith(('.pyc', '.pyo'))]
    assert not caches, f'bytecode caches in the wheel: {caches}'


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / 'site'
    run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', '--target', target, wheel])
    env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE='1')
    out = run([sys.executable, '-c', SMOKE, target], cwd=tmp_path, env=env)
    assert 'smoke ok' in out
