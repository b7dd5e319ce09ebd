"""IVLP / VPT checkpoints of MaPLe's repository load: their prompts live in the encoders (``image_encoder.VPT``,
``{text,image}_encoder.transformer.resblocks.{i}.VPT_shallow``), not under ``prompt_learner``."""
import torch

from promptsync.models.prompt_learners import IVLP, VPT
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint, read_prompt_checkpoint

from ..conftest import CLASSES


def _release_name(key: str) -> str:
    """Our learner key -> the release's key, written out by hand from MaPLe's repo (trainers/independentVL.py, vpt.py)."""
    kind, _, layer = key.partition('.')
    return {'ctx': 'prompt_learner.ctx', 'vision_ctx': 'image_encoder.VPT',
            'deep_text': f'text_encoder.transformer.resblocks.{layer}.VPT_shallow',
            'deep_vision': f'image_encoder.transformer.resblocks.{layer}.VPT_shallow'}[kind]


def _dassl_file(tmp_path, learner, n_classes=len(CLASSES)):
    torch.manual_seed(3)
    prompts = {k: torch.randn_like(v) for k, v in learner.state_dict().items()}
    state = {_release_name(k): v.half() for k, v in prompts.items()}  # the release stores fp16 prompts
    state.update({'prompt_learner.token_prefix': torch.zeros(n_classes, 1, 8),
                  'prompt_learner.token_suffix': torch.zeros(n_classes, 5, 8),
                  'image_encoder.conv1.weight': torch.zeros(4, 3, 2, 2),
                  'text_encoder.transformer.resblocks.0.attn.in_proj_weight': torch.zeros(6, 2)})
    path = tmp_path / 'VLPromptLearner' / 'model.pth.tar-5'
    path.parent.mkdir()
    torch.save({'state_dict': state, 'epoch': 5, 'optimizer': {'state': {}, 'param_groups': []}}, path)
    return path, prompts


def test_an_ivlp_release_checkpoint_loads_key_for_key(backbone, tmp_path):
    learner = IVLP(backbone, n_ctx_text=2, n_ctx_vision=2, depth_text=3, depth_vision=3, classnames=CLASSES)
    path, prompts = _dassl_file(tmp_path, learner)
    assert any(k.startswith('deep_vision.') for k in prompts) and any(k.startswith('deep_text.') for k in prompts)
    meta = load_prompt_checkpoint(learner, path)
    for key, value in learner.state_dict().items():
        assert torch.equal(value, prompts[key].half().float()), key
    _, read_meta = read_prompt_checkpoint(path)
    assert '"frozen_clip_weights": 2' in read_meta['dropped'] and '"class_token_buffers": 2' in read_meta['dropped']
    assert meta['path'] == str(path)


def test_a_vpt_release_checkpoint_loads(backbone, tmp_path):
    learner = VPT(backbone, n_ctx_vision=4, depth=3, classnames=CLASSES)
    path, prompts = _dassl_file(tmp_path, learner)
    load_prompt_checkpoint(learner, path)
    assert set(learner.state_dict()) == set(prompts) and 'vision_ctx' in prompts
    for key, value in learner.state_dict().items():
        assert torch.equal(value, prompts[key].half().float()), key
