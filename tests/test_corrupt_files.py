"""A truncated or garbage prompt checkpoint, prototype bank or backbone checkpoint raises CorruptFileError naming
the file, what it should have been and the fix; a missing one raises ResourceError."""
import random

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from promptsync.datasets.base import LabelSpace
from promptsync.errors import CorruptFileError, ResourceError
from promptsync.models.backbones import OpenCLIP
from promptsync.models.prompt_learners import MaPLe
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint, save_prompt_checkpoint
from promptsync.prototypes import PrototypeBank
from promptsync.utils.files import load_torch_file, read_safetensors, read_safetensors_metadata

from .conftest import CLASSES, TINY

DAMAGE = ('truncated', 'garbage', 'empty')


class NotATensor:
    pass


def damage(path, how):
    """Truncate ``path`` to half its size, overwrite it with (seeded) random bytes of the same size, or empty it."""
    data = path.read_bytes()
    garbage = random.Random(0).randbytes(len(data))
    path.write_bytes({'truncated': data[:len(data) // 2], 'garbage': garbage, 'empty': b''}[how])
    return path


def assert_names_file(err, path, what):
    msg = str(err.value)
    assert err.value.where == str(path) and str(path) in msg.splitlines()[0], msg
    assert what in msg and err.value.fix, msg


def make_bank(path):
    g = torch.Generator().manual_seed(0)
    mean = {lay: torch.randn(4, 5, 8, generator=g) for lay in (0, 1)}
    var = {lay: torch.rand(4, 5, 8, generator=g) + 0.1 for lay in (0, 1)}
    visual = F.normalize(torch.randn(4, 32, generator=g), dim=-1)
    return PrototypeBank((0, 1), mean, var, torch.tensor([3, 4, 5, 6]), visual, LabelSpace(tuple(CLASSES))).save(path)


@pytest.fixture(scope='module')
def tiny_state(backbone):
    return {k: v.contiguous() for k, v in backbone.model.state_dict().items()}


@pytest.mark.parametrize('how', DAMAGE)
@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_prompt_checkpoint(tmp_path, backbone, how, suffix):
    maple = MaPLe(backbone, classnames=CLASSES)
    path = tmp_path / f'prompts{suffix}'
    if suffix == '.safetensors':
        save_prompt_checkpoint(maple.state_dict(), path)
    else:  # a release checkpoint: a Dassl dict of prompt_learner.* tensors
        torch.save({'state_dict': {f'prompt_learner.{k}': v for k, v in maple.state_dict().items()}}, path)
    assert load_prompt_checkpoint(maple, path)['path'] == str(path)
    with pytest.raises(CorruptFileError) as err:
        load_prompt_checkpoint(maple, damage(path, how))
    assert_names_file(err, path, 'prompt checkpoint')
    assert 'convert_checkpoint.py' in err.value.fix


def test_missing_prompt_checkpoint(tmp_path, backbone):
    with pytest.raises(ResourceError, match='convert_checkpoint'):
        load_prompt_checkpoint(MaPLe(backbone, classnames=CLASSES), tmp_path / 'missing.safetensors')


@pytest.mark.parametrize('how', DAMAGE)
def test_prototype_bank(tmp_path, how):
    path = make_bank(tmp_path / 'bank.safetensors')
    assert PrototypeBank.load(path).num_classes == 4
    with pytest.raises(CorruptFileError) as err:
        PrototypeBank.load(damage(path, how))
    assert_names_file(err, path, 'prototype bank')
    assert 'compute_prototypes.py' in err.value.fix


def test_prototype_bank_of_another_kind_and_missing(tmp_path, backbone):
    other = save_prompt_checkpoint(MaPLe(backbone, classnames=CLASSES).state_dict(), tmp_path / 'prompts.safetensors')
    with pytest.raises(CorruptFileError, match='not a promptsync prototype bank') as err:
        PrototypeBank.load(other)
    assert err.value.where == str(other) and 'delete' not in err.value.fix  # never advise deleting another file
    with pytest.raises(ResourceError, match='compute_prototypes'):
        PrototypeBank.load(tmp_path / 'missing.safetensors')


@pytest.mark.parametrize('how', DAMAGE)
@pytest.mark.parametrize('suffix', ['.safetensors', '.pt', '.bin'])
def test_backbone_checkpoint(tmp_path, tiny_state, how, suffix):
    path = tmp_path / f'tiny{suffix}'
    if suffix == '.safetensors':
        save_file(tiny_state, str(path))
    else:
        torch.save(tiny_state, path)
    with pytest.raises(CorruptFileError) as err:
        OpenCLIP(TINY, pretrained=str(damage(path, how)), precision='fp32')
    assert_names_file(err, path, f"open_clip '{TINY}' checkpoint")


def test_backbone_checkpoint_that_reads_but_does_not_fit(tmp_path, tiny_state):
    """A readable file with missing keys keeps open_clip's own error (it is not corrupt)."""
    path = tmp_path / 'partial.safetensors'
    save_file({k: v for k, v in tiny_state.items() if k != 'logit_scale'}, str(path))
    with pytest.raises(RuntimeError, match='logit_scale') as err:
        OpenCLIP(TINY, pretrained=str(path), precision='fp32')
    assert not isinstance(err.value, CorruptFileError)
    with pytest.raises(ResourceError, match='does not exist'):
        OpenCLIP(TINY, pretrained=str(tmp_path / 'missing.bin'))


def test_helpers(tmp_path, tiny_state):
    path = tmp_path / 'x.safetensors'
    save_file({'a': torch.arange(6.0)}, str(path), metadata={'format': 'demo'})
    tensors, meta = read_safetensors(path, 'demo file')
    assert torch.equal(tensors['a'], torch.arange(6.0)) and meta == {'format': 'demo'}
    assert read_safetensors_metadata(path, 'demo file') == {'format': 'demo'}
    damage(path, 'truncated')
    for read in (read_safetensors, read_safetensors_metadata):
        with pytest.raises(CorruptFileError, match='truncated') as err:
            read(path, 'demo file', fix='run make demo')
        assert_names_file(err, path, 'demo file')
        assert err.value.fix == 'run make demo' and 'run make demo' in str(err.value)
    with pytest.raises(ResourceError):
        read_safetensors(tmp_path / 'missing.safetensors', 'demo file')
    torch.save({'a': torch.zeros(2), 'b': NotATensor()}, tmp_path / 'objects.pt')
    with pytest.raises(CorruptFileError, match='never unpickles') as err:
        load_torch_file(tmp_path / 'objects.pt', 'demo file')
    assert_names_file(err, tmp_path / 'objects.pt', 'demo file')
