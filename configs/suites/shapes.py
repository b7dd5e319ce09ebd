# The full shapes benchmark (docs/results.md): 50 test images per class and domain; 3 seeds (the views) for the
# TTA methods; MaPLe without adaptation and MaPLe + TPT as the references of PromptAlign and PromptSync.
#   python tools/benchmark.py configs/suites/shapes.py
_base_ = ['./shapes_demo.py']
suite = dict(
    name='shapes',
    methods=dict(maple=dict(config='configs/shapes/maple_tpt.py', seeds=[0], cfg_options={'tta.steps': 0}),
                 maple_tpt=dict(config='configs/shapes/maple_tpt.py')),
    seeds=[0, 1, 2],
    cfg_options={'data.dataset.per_class': 50})
