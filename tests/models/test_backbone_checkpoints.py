"""Local backbone checkpoints: OpenAI TorchScript archives (refused with the command; the command converts them to
the same logits) and the activation of a file (QuickGELU vs GELU: stated or warned)."""
import json

import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU

from promptsync.errors import ConfigError
from promptsync.models.backbones import OpenCLIP
from promptsync.models.backbones import activation as activation_mod
from promptsync.models.backbones.openai_jit import is_torchscript_archive
from promptsync.models.backbones.openclip import _PACKAGE_MODEL_CONFIGS, register_model_configs
from promptsync.utils.files import read_safetensors_metadata, write_safetensors

from ..conftest import TINY
from ..tools.helpers import load_tool

GELU_JSON = 'ps-tiny-vit-nokey'  # the tiny architecture in a json that does not say which activation


def activations(backbone: OpenCLIP) -> set[str]:
    return {type(m).__name__ for m in backbone.model.modules() if isinstance(m, (torch.nn.GELU, QuickGELU))}


@pytest.fixture(scope='module')
def openai_archive(tmp_path_factory):
    """A TorchScript CLIP archive as OpenAI ships them: a scripted QuickGELU CLIP whose tensors carry OpenAI's key
    names and the three scalar entries (input_resolution, context_length, vocab_size), fp16 weights."""
    register_model_configs()
    torch.manual_seed(3)
    model = open_clip.create_model(TINY, pretrained=None).eval()  # ps-tiny-vit states quick_gelu: true
    for name, value in (('input_resolution', 32), ('context_length', 16), ('vocab_size', 49408)):
        model.__dict__.pop(name, None)
        model.register_buffer(name, torch.tensor(value))
    with torch.no_grad():  # OpenAI's weights are fp16 values (kept in fp32 here so the scripted reference runs)
        for p in model.parameters():
            p.copy_(p.half().float())
    path = tmp_path_factory.mktemp('clip') / 'ViT-tiny.pt'
    torch.jit.save(torch.jit.script(model), str(path))
    return path


@pytest.fixture(scope='module')
def gelu_json(tmp_path_factory):
    cfg = json.loads((_PACKAGE_MODEL_CONFIGS / f'{TINY}.json').read_text())
    cfg.pop('quick_gelu')
    path = tmp_path_factory.mktemp('cfg') / f'{GELU_JSON}.json'
    path.write_text(json.dumps(cfg))
    return str(path)


def test_archive_is_detected_and_refused_with_the_command(openai_archive, tmp_path):
    assert is_torchscript_archive(openai_archive)
    torch.save({'a': torch.zeros(1)}, tmp_path / 'plain.pt')
    assert not is_torchscript_archive(tmp_path / 'plain.pt')
    with pytest.raises(ConfigError) as info:
        OpenCLIP(TINY, pretrained=str(openai_archive), precision='fp32')
    msg = str(info.value)
    want = f'python tools/convert_checkpoint.py --openai-jit {openai_archive} ' \
           f'{openai_archive.with_name("ViT-tiny-openai.safetensors")}'
    assert want in msg and 'TorchScript' in msg


def test_converted_archive_gives_the_same_logits(openai_archive, tmp_path, gelu_json, warnings_logged):
    dst = tmp_path / 'ViT-tiny-openai.safetensors'
    info = load_tool('convert_checkpoint').main(['--openai-jit', str(openai_archive), str(dst), '--model', TINY])
    meta = read_safetensors_metadata(dst, 'x')
    assert meta['quick_gelu'] == 'true' and meta['source_sha256'] == info['source_sha256']
    assert json.loads(meta['dropped_scalars']) == {'input_resolution': 32, 'context_length': 16, 'vocab_size': 49408}
    arch = json.loads(meta['architecture'])
    assert (arch['vision'], arch['image_size'], arch['patch_size'], arch['vision_layers'], arch['text_layers']) == \
        ('vit', 32, 8, 3, 3)
    reference = torch.jit.load(str(openai_archive))
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 32, 32, generator=g)
    text = open_clip.get_tokenizer(TINY)(['a photo of a cat', 'a dog', 'something else'])
    with torch.no_grad():
        img, txt, scale = reference(images, text)
        want = scale * img @ txt.t()
    # a json that does not state the activation: the file's metadata makes it QuickGELU, silently
    for name, cfg in ((TINY, None), (GELU_JSON, gelu_json)):
        bb = OpenCLIP(name, pretrained=str(dst), precision='fp32', model_config=cfg)
        assert activations(bb) == {'QuickGELU'}
        with torch.no_grad():
            got = bb.logit_scale() * bb.encode_image(images, normalize=True) @ \
                bb.encode_text(bb.tokenize(['a photo of a cat', 'a dog', 'something else']), normalize=True).t()
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()
    assert not warnings_logged
    # GELU on the same weights is not the same model: this is the error the metadata prevents
    gelu = OpenCLIP(TINY, pretrained=str(dst), precision='fp32', quick_gelu=False)
    assert activations(gelu) == {'GELU'}
    with torch.no_grad():
        other = gelu.logit_scale() * gelu.encode_image(images, normalize=True) @ \
            gelu.encode_text(gelu.tokenize(['a photo of a cat', 'a dog', 'something else']), normalize=True).t()
    assert (other - want).abs().max() > 1e-3
    assert any('overrides it' in r.getMessage() for r in warnings_logged)  # the file said otherwise: logged


def test_not_stated_warns_once_and_stating_it_silences(tmp_path, gelu_json, warnings_logged, monkeypatch):
    monkeypatch.setattr(activation_mod, '_WARNED', set())
    register_model_configs(gelu_json)
    ref = open_clip.create_model(GELU_JSON, pretrained=None)
    write_safetensors(ref.state_dict(), tmp_path / 'w.safetensors')  # no activation in the metadata
    torch.save(ref.state_dict(), tmp_path / 'w.pt')
    for _ in range(2):
        bb = OpenCLIP(GELU_JSON, pretrained=str(tmp_path / 'w.safetensors'), precision='fp32', model_config=gelu_json)
    assert activations(bb) == {'GELU'}
    msgs = [r.getMessage() for r in warnings_logged if 'does not state its activation' in r.getMessage()]
    assert len(msgs) == 1  # once per file
    assert str(tmp_path / 'w.safetensors') in msgs[0] and 'GELU (nn.GELU)' in msgs[0] and '~4e-2' in msgs[0]
    assert 'model.backbone.quick_gelu=True' in msgs[0]
    OpenCLIP(GELU_JSON, pretrained=str(tmp_path / 'w.pt'), precision='fp32', model_config=gelu_json)
    assert sum('does not state' in r.getMessage() for r in warnings_logged) == 2  # another file: its own warning
    warnings_logged.clear()
    # stated: by the argument (both ways), by a json key (the tiny configs say quick_gelu: true)
    bb = OpenCLIP(GELU_JSON, pretrained=str(tmp_path / 'w.pt'), precision='fp32', model_config=gelu_json, quick_gelu=True)
    assert activations(bb) == {'QuickGELU'}
    bb = OpenCLIP(TINY, pretrained=str(tmp_path / 'w.pt'), precision='fp32', quick_gelu=False)
    assert activations(bb) == {'GELU'}  # overrides the json's quick_gelu: true
    bb = OpenCLIP(TINY, pretrained=str(tmp_path / 'w.pt'), precision='fp32')
    assert activations(bb) == {'QuickGELU'}
    assert not [r for r in warnings_logged if 'activation' in r.getMessage()]


def test_a_name_with_quickgelu_states_it_and_a_contradiction_is_an_error(tmp_path, monkeypatch):
    assert activation_mod.config_statement({}, 'ViT-B-16-quickgelu') is True
    assert activation_mod.config_statement({}, 'ViT-B-16') is None
    assert activation_mod.config_statement({'quick_gelu': False}, 'x') is False
    register_model_configs()
    ref = open_clip.create_model(TINY, pretrained=None)
    write_safetensors(ref.state_dict(), tmp_path / 'gelu.safetensors', {'quick_gelu': 'false'})
    with pytest.raises(ConfigError, match='states quick_gelu=False in its metadata'):
        OpenCLIP(TINY, pretrained=str(tmp_path / 'gelu.safetensors'), precision='fp32')  # the json says true
    bb = OpenCLIP(TINY, pretrained=str(tmp_path / 'gelu.safetensors'), precision='fp32', quick_gelu=False)
    assert activations(bb) == {'GELU'}

