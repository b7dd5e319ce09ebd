# Zero-shot CLIP ViT-B/16 on ImageNet-R with the 80 CLIP ImageNet templates (TPT Table 1: 77.65 top-1).
_base_ = ['./vit_b16_imagenet_r.py']
model = dict(prompt_learner=dict(templates='imagenet80'))
