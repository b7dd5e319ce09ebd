# TDA on the shapes benchmark: the tiny CLIP with hand-crafted prompts ("a photo of a {}.", as the zero-shot
# baseline), the official ImageNet yaml's cache values (configs/_base_/tta/tda.py; not tuned) and one centre-cropped
# view per image — TDA's recipe for its fine-grained targets, chosen on the val split (10 images per class and domain; see
# docs/results.md: target average 35.5 with one view, 29.7 with the 10% most confident of 64 crop+flip views
# (crop_scale (0.3, 1)), 27.5 with AugMix on top, the official ImageNet-variant views). The stream is a seeded
# shuffle (data.stream), as the official loaders shuffle: a class-sorted stream fills one class's cache at a time.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/tda.py']
tta = dict(views=dict(_delete_=True, type='OriginalView'))
data = dict(stream=dict(order='shuffled', seed=0))
