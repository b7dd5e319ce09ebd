# TDA on the shapes benchmark: the tiny CLIP with hand-crafted prompts ("a photo of a {}.", as the zero-shot
# baseline), the official ImageNet-variant views (original + 63 crop+flip+AugMix views, 10% kept) with
# crop_scale=(0.3, 1.0) as the other shapes configs use for 32 px images, and the official ImageNet yaml's cache
# values (configs/_base_/tta/tda.py; not tuned here). The stream is shuffled (seeded), as the official loaders
# shuffle: a class-sorted stream would fill one class's cache after another.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/tda.py']
tta = dict(views=dict(crop_scale=(0.3, 1.0)))
data = dict(stream=dict(order='shuffled', seed=0))  # a seeded stream order (data.stream; docs/configs.md)
