# promptalign on a cross-dataset target, PromptAlign's fine-grained recipe: learning rate 5e-4 (its
# finegrain_PAlign_*.yaml), random-resized-crop + flip views (no AugMix). Default target: Oxford Pets; the
# cross-dataset suite sets each target.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/maple_vit_b16_imagenet.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/prototypes/imagenet_maple_vit_b16.py', '../_base_/tta/promptalign.py']
tta = dict(optimizer=dict(lr=5e-4))
