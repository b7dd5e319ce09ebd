# Hyper-parameter selection on the shapes benchmark's *val* split (never the test split): 25 images per class and
# domain. Used with tools/ablate.py grids and by docs/results.md.
_base_ = ['./shapes.py']
suite = dict(name='shapes-val', seeds=[0], cfg_options={'data.dataset.split': 'val', 'data.dataset.per_class': 25})
