"""View generators (``TRANSFORMS``): a PIL image -> a ``[V, 3, H, W]`` tensor of views, view 0 = original.

Generators receive the sample's own :class:`SampleRNG`, so the views of sample ``i`` depend only on
``(seed, i)``. Resolution, normalisation and interpolation default to the backbone's preprocessing.
``TrainView`` (few-shot prompt training) is the exception to "view 0 = original": one random crop + flip.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from promptsync.registry import TRANSFORMS
from promptsync.utils.seeding import SampleRNG

from .augmix import augmix


def _interp(name: str) -> InterpolationMode:
    try:
        return InterpolationMode(name.lower())
    except ValueError as err:
        raise ValueError(f"unknown interpolation '{name}'; use bicubic, bilinear or nearest") from err


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    return (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))


class _ViewBase:
    def __init__(self, image_size: int | Sequence[int], mean: Sequence[float], std: Sequence[float],
                 interpolation: str = 'bicubic', resize_mode: str = 'shortest'):
        if resize_mode != 'shortest':
            raise ValueError(f"resize_mode '{resize_mode}' is not supported; views resize the shortest side")
        self.size = _size(image_size)
        self.original = T.Compose([T.Resize(min(self.size), interpolation=_interp(interpolation)),
                                   T.CenterCrop(self.size)])
        self.to_tensor = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def original_view(self, img: Image.Image) -> torch.Tensor:
        return self.to_tensor(self.original(img))

    def stack_to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``to_tensor`` of every image, as one ``[N, 3, H, W]`` conversion: the same float32 operations as
        torchvision's ``ToTensor`` + ``Normalize`` (bit-identical, tested), without the per-image overhead."""
        if any(im.mode != 'RGB' for im in images):
            return torch.stack([self.to_tensor(im) for im in images])
        x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2).contiguous()
        return x.to(torch.get_default_dtype()).div(255).sub_(self.mean).div_(self.std)


@TRANSFORMS.register_module()
class OriginalView(_ViewBase):
    """The single evaluation view: resize the shortest side, centre crop, normalise. ``[1, 3, H, W]``."""

    n_views = 1

    def __call__(self, img: Image.Image, rng: SampleRNG | None = None) -> torch.Tensor:
        return self.original_view(img).unsqueeze(0)


@TRANSFORMS.register_module()
class TPTViews(_ViewBase):
    """TPT's views: the original plus ``n_views - 1`` RandomResizedCrop + flip views (+ AugMix).

    Args:
        n_views: total views including the original (TPT: 64).
        crop_scale: RandomResizedCrop area range (torchvision's default (0.08, 1.0), as TPT).
        crop_interpolation: interpolation of the random crops (TPT: torchvision's default, bilinear).
        augmix: apply AugMix on top of the crop (TPT: fine-grained datasets only).
        stack_convert: convert the crops to tensors in one batch (bit-identical; ``False`` = one by one).
    """

    def __init__(self, image_size, mean, std, interpolation: str = 'bicubic', resize_mode: str = 'shortest',
                 n_views: int = 64, crop_scale: Sequence[float] = (0.08, 1.0), flip: bool = True,
                 crop_interpolation: str = 'bilinear', augmix: bool = False, augmix_severity: float = 1.0,
                 augmix_width: int = 3, stack_convert: bool = True):
        super().__init__(image_size, mean, std, interpolation, resize_mode)
        self.stack_convert = stack_convert
        if n_views < 1:
            raise ValueError(f'n_views must be >= 1, got {n_views}')
        self.n_views = n_views
        ops = [T.RandomResizedCrop(self.size, scale=tuple(crop_scale), interpolation=_interp(crop_interpolation))]
        if flip:
            ops.append(T.RandomHorizontalFlip())
        self.crop = T.Compose(ops)
        self.augmix = augmix
        self.augmix_severity = augmix_severity
        self.augmix_width = augmix_width

    def __call__(self, img: Image.Image, rng: SampleRNG) -> torch.Tensor:
        if self.stack_convert and not self.augmix:
            with rng.torch_scope():
                crops = [self.crop(img) for _ in range(self.n_views - 1)]
            return self.stack_to_tensor([self.original(img)] + crops)
        views = [self.original_view(img)]
        with rng.torch_scope():
            for _ in range(self.n_views - 1):
                crop = self.crop(img)
                if self.augmix:
                    views.append(augmix(crop, self.to_tensor, rng, self.augmix_severity, self.augmix_width))
                else:
                    views.append(self.to_tensor(crop))
        return torch.stack(views)


@TRANSFORMS.register_module()
class TrainView(_ViewBase):
    """One training view (CoOp/MaPLe's ``random_resized_crop, random_flip, normalize``): ``[1, 3, H, W]``.

    The randomness comes from the sample's own :class:`SampleRNG`; the trainer derives it from
    ``(seed, epoch, index)``, so every epoch sees new crops and a run is reproducible.

    Args:
        crop_scale: RandomResizedCrop area range (Dassl's default (0.08, 1.0)).
        crop_interpolation: ``None`` = ``interpolation`` (MaPLe: bicubic for both).
        flip: random horizontal flip.
    """

    n_views = 1

    def __init__(self, image_size, mean, std, interpolation: str = 'bicubic', resize_mode: str = 'shortest',
                 crop_scale: Sequence[float] = (0.08, 1.0), flip: bool = True, crop_interpolation: str | None = None):
        super().__init__(image_size, mean, std, interpolation, resize_mode)
        ops = [T.RandomResizedCrop(self.size, scale=tuple(crop_scale),
                                   interpolation=_interp(crop_interpolation or interpolation))]
        if flip:
            ops.append(T.RandomHorizontalFlip())
        self.crop = T.Compose(ops)

    def __call__(self, img: Image.Image, rng: SampleRNG) -> torch.Tensor:
        with rng.torch_scope():
            return self.to_tensor(self.crop(img)).unsqueeze(0)


def build_views(cfg, preprocess_cfg: dict, default: str = 'OriginalView'):
    """A view generator from a ``TRANSFORMS`` config (``None`` = ``default``), sized and normalised like the
    backbone's preprocessing (``backbone.preprocess_cfg``) unless the config says otherwise."""
    pp = preprocess_cfg
    return TRANSFORMS.build(dict(cfg or dict(type=default)),
                            default_args=dict(image_size=pp['size'], mean=pp['mean'], std=pp['std'],
                                              interpolation=pp['interpolation']))
