"""Image encoding in chunks (``model.image_chunk_size``) gives the features, taps and gradients of one pass."""
import pytest
import torch

from promptsync.errors import ConfigError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import MaPLe
from promptsync.models.prompt_learners.base import Prompts, VisionPrompts
from promptsync.models.prompt_learners.stacking import stack_vision_prompts

from ..conftest import CLASSES


def _encode(backbone, chunk, per_row):
    torch.manual_seed(5)
    learner = MaPLe(backbone, classnames=CLASSES)
    model = PromptedCLIP(backbone, learner, image_chunk_size=chunk)
    images = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    prompts = learner()
    if per_row:  # each row with its own prompts, as copies adapted together have
        other = VisionPrompts(shallow=1.5 * prompts.vision.shallow, deep={k: -v for k, v in prompts.vision.deep.items()})
        vision = stack_vision_prompts([prompts.vision, other], [4, 6])
        prompts = Prompts(text=None, vision=vision)
    with backbone.taps('vision', (0, 1)) as taps:
        feats = model.image_features(images, prompts)
    (feats * torch.linspace(-1, 1, feats.numel()).view_as(feats)).sum().backward()
    return feats.detach(), {k: v.detach() for k, v in taps.tokens().items()}, learner.proj.weight.grad.clone()


@pytest.mark.parametrize('per_row', [False, True])
def test_chunked_image_encoding_equals_one_pass(backbone, per_row):
    feats, taps, grad = _encode(backbone, None, per_row)
    for chunk in (1, 3, 'auto'):
        f, t, g = _encode(backbone, chunk, per_row)
        assert torch.allclose(f, feats, atol=1e-6)
        assert all(torch.allclose(t[k], taps[k], atol=1e-6) and t[k].shape[0] == 10 for k in taps)
        assert torch.allclose(g, grad, atol=1e-6, rtol=1e-5)


def test_bad_chunk_size_is_refused(backbone):
    with pytest.raises(ConfigError, match='image_chunk_size'):
        PromptedCLIP(backbone, MaPLe(backbone, classnames=CLASSES), image_chunk_size=0)
