"""ImageNetV2 matched-frequency (Recht et al., 2019): a new test set for all 1000 ImageNet classes.

Class folders are named ``0`` .. ``999`` and folder ``k`` holds ImageNet class ``k``: labels are the
integer folder names, never a lexicographic folder order (which would give ``0, 1, 10, 100, ...``). Class
ids are the wnids of the classes, class names CLIP's ImageNet names.

Accepted layouts (``root`` may be any of these folders or the data root above them)::

    DATA/imagenetv2/imagenetv2-matched-frequency-format-val/<k>/*.jpeg   (CoOp / PromptAlign)
    DATA/imagenetv2-matched-frequency-format-val/<k>/*.jpeg              (TPT)
"""
from __future__ import annotations

from typing import Sequence

from promptsync.registry import DATASETS

from .wnid_folders import WnidSubsetDataset


@DATASETS.register_module()
class ImageNetV2(WnidSubsetDataset):

    name = 'ImageNetV2'
    subdirs = ('imagenetv2/imagenetv2-matched-frequency-format-val', 'imagenetv2-matched-frequency-format-val')
    download = ('download imagenetv2-matched-frequency.tar.gz from https://huggingface.co/datasets/vaishaal/ImageNetV2 '
                'and extract it into DATA/imagenetv2/ so that '
                'DATA/imagenetv2/imagenetv2-matched-frequency-format-val/0/... exists')
    folder_pattern = '<k>'
    folder_rule = 'class folders must be named by their ImageNet class index 0..999'

    def _folder_names(self, indices: Sequence[int], wnids: Sequence[str]) -> list[str]:
        return [str(i) for i in indices]
