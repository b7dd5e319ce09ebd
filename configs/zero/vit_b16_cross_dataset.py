# Zero with CLIP ViT-B/16 on a cross-dataset target (default: Oxford Pets; the cross-dataset suite sets each target).
# The official code uses the same views (no AugMix) and the same prompt, "a photo of a {}.", on every dataset.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/zero.py']
model = dict(prompt_learner=dict(templates='single'))
