"""View generation (per-sample determinism, TPT layout, AugMix) and confident-view selection."""
import numpy as np
import pytest
import torch
from PIL import Image

from promptsync.datasets.fake import make_image
from promptsync.registry import TRANSFORMS, VIEW_SELECTORS
from promptsync.tta.selection import view_entropy
from promptsync.utils.seeding import SampleRNG, derive_seed

PP = dict(image_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.fixture
def image():
    import random
    return make_image(random.Random(0), size=(57, 41))


def build(cfg):
    return TRANSFORMS.build(cfg, default_args=PP)


def test_tpt_views_layout_and_original(image):
    tpt = build(dict(type='TPTViews', n_views=64))
    out = tpt(image, SampleRNG.for_sample(0, 7))
    assert out.shape == (64, 3, 32, 32)
    orig = build(dict(type='OriginalView'))(image)
    assert orig.shape == (1, 3, 32, 32) and torch.equal(out[0], orig[0])
    # the original view: shortest side resized to 32 then centre crop, normalised by hand
    small = image.resize((44, 32), Image.BICUBIC)  # 57x41 -> shortest side 32 (width int(32 * 57 / 41))
    left = 6                                        # round((44 - 32) / 2)
    ref = torch.from_numpy(np.asarray(small.crop((left, 0, left + 32, 32)), dtype=np.float32) / 255.0)
    ref = (ref.permute(2, 0, 1) - 0.5) / 0.25
    assert torch.allclose(orig[0], ref, atol=1e-5)
    assert torch.unique(out.flatten(1), dim=0).shape[0] > 40  # the crops differ (a few land on plain background)


def test_views_depend_only_on_seed_and_index(image):
    tpt = build(dict(type='TPTViews', n_views=8))
    a = tpt(image, SampleRNG.for_sample(0, 3))
    torch.manual_seed(123)  # global RNG state must not matter
    np.random.seed(5)
    b = tpt(image, SampleRNG.for_sample(0, 3))
    assert torch.equal(a, b)
    assert not torch.equal(a[1:], tpt(image, SampleRNG.for_sample(0, 4))[1:])
    assert not torch.equal(a[1:], tpt(image, SampleRNG.for_sample(1, 3))[1:])
    state = torch.random.get_rng_state()
    tpt(image, SampleRNG.for_sample(0, 3))
    assert torch.equal(state, torch.random.get_rng_state())  # global torch RNG untouched


def test_augmix_views(image):
    plain = build(dict(type='TPTViews', n_views=6))
    mixed = build(dict(type='TPTViews', n_views=6, augmix=True))
    a = mixed(image, SampleRNG.for_sample(0, 1))
    assert torch.equal(a, mixed(image, SampleRNG.for_sample(0, 1)))
    b = plain(image, SampleRNG.for_sample(0, 1))
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1:], b[1:])
    assert torch.isfinite(a).all()


def test_augmix_is_a_convex_mix_of_crop_and_chains():
    from promptsync.tta.augmix import augmix
    crop = Image.new('RGB', (16, 16), (200, 10, 10))

    def to_tensor(img):
        return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)
    out = augmix(crop, to_tensor, SampleRNG.for_sample(0, 0))
    assert out.min() >= -1e-4 and out.max() <= 255 + 1e-4  # a convex combination of images in [0, 255]


def test_derive_seed_is_stable():
    assert derive_seed(0, 5) == derive_seed(0, 5) and derive_seed(0, 5) != derive_seed(0, 6)
    assert derive_seed(0, 5) != derive_seed(5, 0)


def test_confidence_selection_matches_a_naive_sort():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g) * torch.rand(64, 1, generator=g) * 5
    sel = VIEW_SELECTORS.build(dict(type='ConfidenceSelection', ratio=0.1))(logits)
    p = logits.softmax(-1).numpy()
    ent = -(p * np.log(p)).sum(-1)
    assert sel.tolist() == np.argsort(ent, kind='stable')[:6].tolist()
    assert torch.allclose(view_entropy(logits), torch.from_numpy(ent).float(), atol=1e-5)


def test_selection_options():
    logits = torch.zeros(10, 4)
    logits[3, 0] = 9.0  # the only confident view
    sel = VIEW_SELECTORS.build(dict(type='ConfidenceSelection', ratio=0.1, include_original=True))(logits)
    assert sel.tolist() == [3, 0]
    assert VIEW_SELECTORS.build(dict(type='ConfidenceSelection', ratio=0.01))(logits).tolist() == [3]  # min 1
    assert VIEW_SELECTORS.build(dict(type='AllViews'))(logits).tolist() == list(range(10))
    with pytest.raises(ValueError, match='ratio'):
        VIEW_SELECTORS.build(dict(type='ConfidenceSelection', ratio=0))


@pytest.mark.parametrize('mode', ['RGB', 'L'])
def test_stacked_conversion_is_bit_identical_to_one_by_one(image, mode):
    """The views' batched tensor conversion equals torchvision's ToTensor + Normalize per crop, bit for bit."""
    img = image.convert(mode).convert('RGB') if mode == 'L' else image
    fast = build(dict(type='TPTViews', n_views=16))
    plain = build(dict(type='TPTViews', n_views=16, stack_convert=False))
    a, b = fast(img, SampleRNG.for_sample(0, 5)), plain(img, SampleRNG.for_sample(0, 5))
    assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)
