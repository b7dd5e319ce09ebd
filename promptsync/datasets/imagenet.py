"""ImageNet (ILSVRC2012), ``split='val'`` (50,000 images) or ``'train'``: all 1000 classes.

Label ``k`` is ImageNet class ``k`` (folder ``<wnid>``, wnids in sorted order); class names are CLIP's
ImageNet names. Both splits must be in ``<wnid>/`` class folders: the official validation archive is flat
and has to be sorted into class folders first (``valprep.sh``).

``subsample='base'|'new'`` gives CoOp's base-to-novel halves (labels 0-499 / 500-999, re-indexed);
``num_shots=K`` K images per class (from ``split='train'``).

Accepted layouts (``root`` may be the data root, the ``imagenet`` folder or ``imagenet/images``)::

    DATA/imagenet/images/{train,val}/<wnid>/*.JPEG   (CoOp)
    DATA/imagenet/{train,val}/<wnid>/*.JPEG
"""
from __future__ import annotations

from pathlib import Path

from promptsync.registry import DATASETS

from .base import IMAGE_EXTENSIONS
from .wnid_folders import WnidSubsetDataset

VALPREP = 'https://raw.githubusercontent.com/soumith/imagenetloader.torch/master/valprep.sh'


@DATASETS.register_module()
class ImageNet(WnidSubsetDataset):

    name = 'ImageNet'
    test_split = 'val'  # no few-shot sampling of the test set
    download = ('download ILSVRC2012 from https://image-net.org; extract ILSVRC2012_img_train.tar into train/ and '
                'each class tar inside it into train/<wnid>/; extract ILSVRC2012_img_val.tar into val/ and sort it '
                f'into val/<wnid>/ folders with valprep.sh ({VALPREP}), so that '
                'DATA/imagenet/images/val/n01440764/... exists')

    def __init__(self, root: str, split: str = 'val', **options):
        """``options``: ``subsample``, ``num_shots``, ``fewshot_seed``, ``short_classes``, ``fewshot_cache``."""
        if split not in ('train', 'val'):
            raise ValueError(f"ImageNet split must be 'train' or 'val', got {split!r}")
        self.split = split
        super().__init__(root, **options)

    def _candidates(self, root: Path) -> list[Path]:
        # not ``root`` itself: a split folder given as the root of the other split must not be taken for it
        return [root / 'imagenet' / 'images' / self.split, root / 'imagenet' / self.split, root / self.split]

    def _find_root(self, root: Path, folders: set[str]) -> Path:
        try:
            return super()._find_root(root, folders)
        except FileNotFoundError:
            fix = (f'run valprep.sh ({VALPREP}) inside val/' if self.split == 'val'
                   else 'extract each train/<wnid>.tar into train/<wnid>/')
            for c in self._candidates(root):
                if c.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS + ('.tar',) for p in c.iterdir()):
                    raise FileNotFoundError(
                        f'ImageNet {self.split}: {c} holds images or archives but no <wnid>/ class folders; the '
                        f'official {self.split} archive must be sorted into one folder per class first: {fix}.'
                    ) from None
            raise
