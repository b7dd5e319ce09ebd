# C-TPT on the shapes benchmark: configs/shapes/tpt.py (its crop scale and learning rate) plus C-TPT's dispersion
# term with the base recipe's lambda = 50.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_coop.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/ctpt.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)), optimizer=dict(lr=5e-3))
