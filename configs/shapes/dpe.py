# DPE on the shapes benchmark: tiny CLIP with hand-crafted prompts ("a photo of a {}.", as configs/shapes/zeroshot.py),
# the official ImageNet-variant recipe (configs/_base_/tta/dpe.py: 63 AugMix views, ImageNet yaml values, none tuned
# here) with crop_scale=(0.3, 1.0) as the other shapes configs (32 px images). DPE is online: the test stream is
# shuffled (a seeded order; DPE's loaders shuffle) instead of the dataset's class order.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/dpe.py']
data = dict(stream=dict(order='shuffled', seed=0))  # a seeded stream order (data.stream; docs/configs.md)
tta = dict(views=dict(crop_scale=(0.3, 1.0)))
