# `make demo`: zero-shot, TPT, PromptAlign and PromptSync with the tiny CLIP on the shapes benchmark's target
# domains (and the source domain for reference), one seed, a reduced test split. docs/results.md has the full
# run (more images per class, 3 seeds): python tools/benchmark.py configs/suites/shapes.py
suite = dict(
    name='shapes-demo',
    methods=dict(
        zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[0]),
        tpt=dict(config='configs/shapes/tpt.py'),
        promptalign=dict(config='configs/shapes/promptalign.py'),
        promptsync=dict(config='configs/shapes/promptsync.py')),
    datasets=dict(
        photo={'data.dataset.domain': 'photo'},
        sketch={'data.dataset.domain': 'sketch'},
        cartoon={'data.dataset.domain': 'cartoon'},
        corrupted={'data.dataset.domain': 'corrupted'}),
    averages=dict(target_avg=['sketch', 'cartoon', 'corrupted']),
    seeds=[0],
    metric='top1',
    tables=['mean_class_top1', 'ece', 'pred_max_share'],  # more tables in benchmark.md (calibration, collapse)
    cfg_options={'data.dataset.per_class': 10},
    prepare=[dict(step='prototypes', method='promptsync')])
