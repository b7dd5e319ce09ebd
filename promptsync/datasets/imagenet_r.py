"""ImageNet-R (Hendrycks et al., 2021): 200 ImageNet classes as renditions.

Label ``j`` is the ``j``-th of the 200 wnids in sorted order, which is the ``j``-th index of
``data/imagenet/imagenet_r_indices.txt`` in ImageNet's label order; class names are CLIP's ImageNet
names at those indices.

Accepted layouts (``root`` may be any of these folders or the data root above them)::

    DATA/imagenet-rendition/imagenet-r/<wnid>/*.jpg   (CoOp / PromptAlign)
    DATA/imagenet-r/<wnid>/*.jpg                      (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .wnid_folders import WnidSubsetDataset


@DATASETS.register_module()
class ImageNetR(WnidSubsetDataset):

    name = 'ImageNet-R'
    indices_file = 'imagenet/imagenet_r_indices.txt'
    subdirs = ('imagenet-rendition/imagenet-r', 'imagenet-r')
    download = ('download https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar and extract it so that '
                'DATA/imagenet-rendition/imagenet-r/n01443537/... exists')
