# Every method on the shapes benchmark's target domains, on balanced and on long-tailed test streams (imbalance
# ratio 10 and 100, data.stream; docs/configs.md): 25 test images per class balanced (500 per domain); the long-tailed
# streams keep 50 -> 5 (ratio 10, 398 images) and 100 -> 1 (ratio 100, 459 images) per class; 3 seeds. The
# collapse and calibration measures are in every cell's metrics.json; the suite writes a table per metric
# (suite.tables) and the plots. docs/results.md, "Streams".
#   python tools/benchmark.py configs/suites/shapes_streams.py
_lt = {10: dict(imbalance='long_tail', ratio=10, order='shuffled', seed=0),
       100: dict(imbalance='long_tail', ratio=100, order='shuffled', seed=0)}
_domains = ('sketch', 'cartoon', 'corrupted')
_datasets = {d: {'data.dataset.domain': d} for d in _domains}
for _r, _stream in _lt.items():  # the head class keeps 50 (ratio 10: tail 5) / 100 (ratio 100: tail 1) images
    _datasets.update({f'{d}_lt{_r}': {'data.dataset.domain': d, 'data.dataset.per_class': 50 if _r == 10 else 100,
                                      'data.stream': _stream} for d in _domains})
_RECORD = {'custom_hooks': [dict(type='AdaptationRecorder')]}
suite = dict(
    name='shapes-streams',
    methods=dict(  # in order of cost: an interrupted run has the cheap rows first (finished cells are reused)
        zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[0]),
        maple=dict(config='configs/shapes/maple_tpt.py', seeds=[0], cfg_options={'tta.steps': 0}),
        zero=dict(config='configs/shapes/zero.py'),
        mta=dict(config='configs/shapes/mta.py'),
        tps=dict(config='configs/shapes/tps.py'),
        tda=dict(config='configs/shapes/tda.py'),
        tpt=dict(config='configs/shapes/tpt.py'),
        ctpt=dict(config='configs/shapes/ctpt.py'),
        dpe=dict(config='configs/shapes/dpe.py'),
        # the three PromptSync is compared with most closely also record how the prompts move (tools/analyze.py)
        maple_tpt=dict(config='configs/shapes/maple_tpt.py', cfg_options=_RECORD),
        promptalign=dict(config='configs/shapes/promptalign.py', cfg_options=_RECORD),
        promptsync=dict(config='configs/shapes/promptsync.py', cfg_options=_RECORD)),
    datasets=_datasets,
    averages=dict(balanced=list(_domains), lt10=[f'{d}_lt10' for d in _domains],
                  lt100=[f'{d}_lt100' for d in _domains]),
    seeds=[0, 1, 2],
    metric='top1',
    tables=['mean_class_top1', 'ece', 'pred_entropy', 'pred_max_share'],
    cfg_options={'data.dataset.per_class': 25},
    prepare=[dict(step='prototypes', method='promptsync')])
