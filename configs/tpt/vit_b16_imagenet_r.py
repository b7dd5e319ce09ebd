# TPT with CLIP ViT-B/16 on ImageNet-R (TPT Table 1: 77.06 top-1).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/coop_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/tpt.py']
