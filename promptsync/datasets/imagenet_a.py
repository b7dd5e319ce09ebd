"""ImageNet-A (Hendrycks et al., 2021): 200 ImageNet classes, natural adversarial examples.

Label ``j`` is the ``j``-th of the 200 wnids in sorted order, which is the ``j``-th index of
``data/imagenet/imagenet_a_indices.txt`` in ImageNet's label order (TPT's ``imagenet_a_mask``); class
names are CLIP's ImageNet names at those indices. Files next to the class folders (the archive's
``README.txt``) are ignored.

Accepted layouts (``root`` may be any of these folders or the data root above them)::

    DATA/imagenet-adversarial/imagenet-a/<wnid>/*.jpg   (CoOp / PromptAlign)
    DATA/imagenet-a/<wnid>/*.jpg                        (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .wnid_folders import WnidSubsetDataset


@DATASETS.register_module()
class ImageNetA(WnidSubsetDataset):

    name = 'ImageNet-A'
    indices_file = 'imagenet/imagenet_a_indices.txt'
    subdirs = ('imagenet-adversarial/imagenet-a', 'imagenet-a')
    download = ('download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar and extract it so that '
                'DATA/imagenet-adversarial/imagenet-a/n01498041/... exists')
