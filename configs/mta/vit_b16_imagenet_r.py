# MTA with CLIP ViT-B/16 on ImageNet-R, "a photo of a {}." (the official main.py: ctx_init "a_photo_of_a").
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/mta.py']
