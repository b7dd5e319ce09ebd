# default_runtime.py + the AdaptationRecorder hook: each sample's prompt change, feature shifts, cross-modal
# consistency and initial/adapted prediction go to adaptation.jsonl in the work dir, for
# python tools/analyze.py RUN_DIR [RUN_DIR ...] (docs/analysis.md). Put '../_base_/analysis.py' in a config's _base_
# in place of '../_base_/default_runtime.py' (two bases may not both set custom_hooks), or add
# dict(type='AdaptationRecorder') to your own custom_hooks, or pass
# --cfg-options "custom_hooks=[dict(type='AdaptationRecorder')]". For prompt-tuning methods (EpisodicTTA) only.
# The hooks are part of a run's fingerprint: recording a run that exists needs --no-resume (or a new --work-dir).
_base_ = ['./default_runtime.py']
custom_hooks = [dict(type='AdaptationRecorder', min_shift=1e-5, sums_every=256)]
