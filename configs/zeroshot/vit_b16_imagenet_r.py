# Zero-shot CLIP ViT-B/16 on ImageNet-R, single template "a photo of a {}." (TPT Table 1: 73.98 top-1).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/zeroshot.py']
data = dict(batch_size=64)
