# PromptSync, CLIP ViT-B/16, ImageNet-trained MaPLe prompts and ImageNet class prototypes, on ImageNet-Sketch.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/maple_vit_b16_imagenet.py',
          '../_base_/datasets/imagenet_sketch.py', '../_base_/prototypes/imagenet_maple_vit_b16.py',
          '../_base_/tta/promptsync.py']
