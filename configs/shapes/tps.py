# TPS on the shapes benchmark: the tiny CLIP's hand-crafted prompt ("a photo of a {}.") gives the prototypes; the
# crop scale of the other shapes configs (32 px images), TPS's other settings as in its code.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/tps.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)))
