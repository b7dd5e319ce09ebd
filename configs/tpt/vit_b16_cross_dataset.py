# TPT on a cross-dataset target: AugMix views, as TPT does for the fine-grained sets (default target: Oxford
# Pets; the cross-dataset suite sets each target).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/coop_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/tpt_augmix.py']
