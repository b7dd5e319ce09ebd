# The ratio-100 long-tailed streams of configs/suites/shapes_streams.py for the three methods PromptSync is compared
# with most closely, over 3 seeds (docs/results.md, "Streams"; the full streams suite's other cells are one seed on
# the development machine's budget). With the same --work-dir as that suite, its seed-0 cells are reused.
#   python tools/benchmark.py configs/suites/shapes_streams_lt100.py --work-dir work_dirs/benchmark/shapes-streams
_base_ = ['./shapes_streams.py']
_lt100 = dict(imbalance='long_tail', ratio=100, order='shuffled', seed=0)
_record = {'custom_hooks': [dict(type='AdaptationRecorder')]}
suite = dict(
    name='shapes-streams-lt100',
    methods=dict(_delete_=True,
                 zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[0]),
                 maple_tpt=dict(config='configs/shapes/maple_tpt.py', cfg_options=_record),
                 promptalign=dict(config='configs/shapes/promptalign.py', cfg_options=_record),
                 promptsync=dict(config='configs/shapes/promptsync.py', cfg_options=_record)),
    datasets={'_delete_': True, **{f'{d}_lt100': {'data.dataset.domain': d, 'data.dataset.per_class': 100,
                                                  'data.stream': _lt100} for d in ('sketch', 'cartoon', 'corrupted')}},
    averages=dict(_delete_=True, lt100=['sketch_lt100', 'cartoon_lt100', 'corrupted_lt100']))
