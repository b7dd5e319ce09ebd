# Runtime defaults shared by every method config.
seed = 0              # run seed: per-sample view randomness derives from (seed, sample index)
device = 'auto'       # 'auto' | 'cpu' | 'cuda' | 'cuda:N'
work_dir = None       # default: work_dirs/<method>/<config name>
log_level = 'INFO'
hooks = [dict(type='ProgressBarHook')]
metrics = [dict(type='Accuracy', topk=(1, 5))]
