# TPT on the shapes benchmark: the reference recipe with the two choices made on the val split (docs/results.md):
# crop scale and learning rate (32 px images: TPT's 8%-area crops are 9 px wide).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_coop.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/tpt.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)), optimizer=dict(lr=5e-3))
