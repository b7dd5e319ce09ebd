"""ImageNet-Sketch (Wang et al., 2019): sketches of all 1000 ImageNet classes.

Label ``k`` is ImageNet class ``k`` (folder ``<wnid>``, wnids in sorted order); class names are CLIP's
ImageNet names.

Accepted layouts (``root`` may be any of these folders or the data root above them)::

    DATA/imagenet-sketch/images/<wnid>/*.JPEG          (CoOp)
    DATA/imagenet-sketch/ImageNet-Sketch/<wnid>/*.JPEG (PromptAlign)
    DATA/imagenet-sketch/sketch/<wnid>/*.JPEG          (the official archive extracted in place)
    DATA/ImageNet-Sketch/<wnid>/*.JPEG                 (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .wnid_folders import WnidSubsetDataset


@DATASETS.register_module()
class ImageNetSketch(WnidSubsetDataset):

    name = 'ImageNet-Sketch'
    subdirs = ('imagenet-sketch/images', 'imagenet-sketch/ImageNet-Sketch', 'imagenet-sketch/sketch',
               'ImageNet-Sketch')
    download = ('get ImageNet-Sketch.zip via https://github.com/HaohanWang/ImageNet-Sketch (Google Drive, or '
                'Kaggle / Hugging Face "imagenet_sketch") and extract it into DATA/imagenet-sketch/ so that '
                'DATA/imagenet-sketch/sketch/n01440764/... exists')
