# MaPLe + TPT on the shapes benchmark (PromptAlign's loop without alignment).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_maple.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/maple_tpt.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)), optimizer=dict(lr=1e-2))
