# Zero-shot CLIP ViT-B/16 on a cross-dataset target with CoOp's per-dataset template (default target: Oxford Pets,
# "a photo of a {}, a type of pet."; the cross-dataset suite sets each target and its template).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/zeroshot.py']
model = dict(prompt_learner=dict(templates='oxford_pets'))
data = dict(batch_size=64)
