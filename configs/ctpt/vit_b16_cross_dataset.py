# C-TPT on a cross-dataset target, as C-TPT's scripts/test_tpt_ctpt_fg.sh: AugMix views, lambda = 50 (default
# target: Oxford Pets; a cross-dataset suite sets each target).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/coop_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/ctpt.py']
tta = dict(views=dict(augmix=True))
