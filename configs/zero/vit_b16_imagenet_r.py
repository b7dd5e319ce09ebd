# Zero with CLIP ViT-B/16 on ImageNet-R, "a photo of a {}." (the official scripts/zero.sh: ctx "a_photo_of_a", no
# template ensemble).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/zero.py']
