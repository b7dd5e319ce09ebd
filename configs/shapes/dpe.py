# DPE on the shapes benchmark: tiny CLIP with hand-crafted prompts ("a photo of a {}.", as configs/shapes/zeroshot.py),
# the official ImageNet yaml values (configs/_base_/tta/dpe.py; not tuned) and one centre-cropped view per image —
# DPE's recipe for its fine-grained targets, chosen on the val split (docs/results.md: target average 35.8 with one
# view, 33.8 with 64 crop+flip views (crop_scale (0.3, 1)), 34.3 with AugMix on top at ten times the cost). DPE is
# online: the test stream is a seeded shuffle (data.stream), as DPE's loaders shuffle.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/dpe.py']
tta = dict(views=dict(_delete_=True, type='OriginalView'))
data = dict(stream=dict(order='shuffled', seed=0))
