# The full shapes benchmark (docs/results.md): 50 test images per class and domain, 3 seeds for the TTA methods.
_base_ = ['./shapes_demo.py']
suite = dict(name='shapes', seeds=[0, 1, 2], cfg_options={'data.dataset.per_class': 50, 'hooks': []})
