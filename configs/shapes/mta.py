# MTA on the shapes benchmark: the tiny CLIP with the hand-crafted prompt ("a photo of a {}."), the official recipe
# with the crop scale of the other shapes configs (32 px images: 8%-area crops are 9 px wide).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/mta.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)))
