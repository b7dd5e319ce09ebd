# Zero-shot tiny CLIP on the shapes benchmark ("a photo of a {}."); the domain is set by the suite or
# --cfg-options data.dataset.domain=sketch.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_clip.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/zeroshot.py']
data = dict(batch_size=100)
