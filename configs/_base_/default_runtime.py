# Runtime defaults shared by every method config.
default_scope = 'promptsync'  # registry scope (mmengine)
seed = 0              # run seed: per-sample view randomness derives from (seed, sample index)
device = 'auto'       # 'auto' | 'cpu' | 'cuda' | 'cuda:N' (under torchrun: each rank's own GPU)
work_dir = None       # default: work_dirs/<method>/<config name>
log_level = 'INFO'
default_hooks = dict(progress=dict(type='ProgressBarHook'))  # set progress=None (or disable=True) to hide the bar
custom_hooks = []     # your hooks (HOOKS configs); they see every loop stage and every TTA stage
# accuracy, balanced (mean per-class) accuracy, ECE (15 bins) and the collapse measures; metrics.json also holds
# per-class accuracy (key per_class) and the work dir a reliability diagram (reliability.png)
metrics = [dict(type='Accuracy', topk=(1, 5)), dict(type='MeanPerClassAccuracy'),
           dict(type='ExpectedCalibrationError', bins=15), dict(type='PredictionCollapse')]
