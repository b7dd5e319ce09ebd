# PromptAlign, CLIP ViT-B/16, ImageNet-trained MaPLe prompts and ImageNet source statistics, on ImageNet-V2.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/maple_vit_b16_imagenet.py',
          '../_base_/datasets/imagenet_v2.py', '../_base_/prototypes/imagenet_maple_vit_b16.py',
          '../_base_/tta/promptalign.py']
