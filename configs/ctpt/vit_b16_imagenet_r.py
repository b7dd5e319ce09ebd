# C-TPT with CLIP ViT-B/16 on ImageNet-R, as C-TPT's scripts/test_tpt_ctpt_ds.sh: lambda = 20 and AugMix views
# (--I_augmix: C-TPT applies AugMix to the ImageNet variants too, unlike TPT's configs/tpt/vit_b16_imagenet_r.py).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/coop_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/ctpt.py']
tta = dict(views=dict(augmix=True),
           losses=[dict(type='MarginalEntropyLoss', weight=1.0),
                   dict(type='TextFeatureDispersionLoss', weight=20.0)])
