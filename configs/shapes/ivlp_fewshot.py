# IVLP prompts of the tiny CLIP: the IVLP few-shot recipe (configs/_base_/train/ivlp_fewshot.py: 5 epochs, batch 4,
# SGD, cosine), 16 shots per class of the source domain's (photo) train split, from text-initialised prompts at every
# layer (configs/_base_/models/ps_shapes_ivlp.py), with the two shapes choices of configs/shapes/maple_fewshot.py:
# crops of 85-100% area and lr 0.02 (MaPLe's val choice; the official IVLP and MaPLe recipes share lr 0.0035; not
# re-tuned for IVLP; source-val 83.2, docs/baselines.md).
#   python tools/train.py configs/shapes/ivlp_fewshot.py --work-dir work_dirs/train/shapes_ivlp_16shot
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_ivlp.py', '../_base_/train/ivlp_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(optimizer=dict(lr=0.02), train_view=dict(crop_scale=(0.85, 1.0)))
