# TDA with CLIP ViT-B/16 on ImageNet-R (TDA Table 1: 80.24 top-1): the official configs/imagenet_r.yaml (positive
# alpha 1.0, beta 8.0; negative as every yaml), the 80 CLIP templates averaged (the official ImageNet-R template
# list, datasets/imagenet_r.py) and the AugMix views of get_ood_preprocess (configs/_base_/tta/tda.py). TDA is
# online: the official loader shuffles the test set (DataLoader shuffle=True after torch.manual_seed(1)), so the
# stream here is a seeded shuffle too (not the official permutation, which depends on their file listing and torch).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/tda.py']
model = dict(prompt_learner=dict(templates='imagenet80'))
tta = dict(positive=dict(alpha=1.0, beta=8.0))
# data.batch_size changes no prediction (the samples of a batch go one after another, tested); 8 images per batch
# only make the saved online state (written after every batch, ~2 MB for 200 classes) 8x rarer.
data = dict(stream=dict(order='shuffled', seed=0), batch_size=8)
