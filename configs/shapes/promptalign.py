# PromptAlign on the shapes benchmark: source statistics from the photo train split.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_maple.py', '../_base_/datasets/shapes.py',
          '../_base_/prototypes/shapes_photo_train.py', '../_base_/tta/promptalign.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)), optimizer=dict(lr=1e-2))
