# TDA with CLIP ViT-B/16 on a cross-dataset target (default: Oxford Pets, TDA Table 2: 88.63 top-1): one
# centre-cropped view (the official code feeds CLIP's own preprocess, no augmented views), the official
# configs/oxford_pets.yaml (positive alpha 2.0, beta 7.0) and its template "a photo of a {}, a type of pet.".
# A suite that swaps the target must also set that dataset's yaml values and template (official kdiAAA/TDA,
# positive alpha/beta: caltech101 5.0/5.0, dtd 2.0/3.0, eurosat 4.0/8.0, fgvc 2.0/2.0, food101 1.0/1.0,
# oxford_flowers 1.0/5.0, oxford_pets 2.0/7.0, stanford_cars 1.0/7.0, sun397 2.0/3.0, ucf101 3.0/8.0; the official
# templates are CoOp's per-dataset ones except caltech101, stanford_cars and sun397, which use the 7-template
# ensemble of datasets/imagenet.py; see docs/baselines.md). TDA is online and the official loaders shuffle the
# test set: the stream here is a seeded shuffle (not the official permutation).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/tda.py']
model = dict(prompt_learner=dict(templates='oxford_pets'))
tta = dict(views=dict(_delete_=True, type='OriginalView'), positive=dict(alpha=2.0, beta=7.0))
# data.batch_size changes no prediction (the samples of a batch go one after another, tested); 64 one-view images
# per batch make the saved online state (written after every batch) 64x rarer.
data = dict(stream=dict(order='shuffled', seed=0), batch_size=64)
