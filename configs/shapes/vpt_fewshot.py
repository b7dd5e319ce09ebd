# VPT prompts of the tiny CLIP: the VPT few-shot recipe (configs/_base_/train/vpt_fewshot.py: 5 epochs, batch 4, SGD,
# cosine), 16 shots per class of the source domain's (photo) train split, 8 vision tokens at all 4 vision layers with
# the fixed "a photo of a {}." (configs/_base_/models/ps_shapes_vpt.py), with the shapes choices of
# configs/shapes/maple_fewshot.py: crops of 85-100% area, and MaPLe's val-chosen lr 0.02 scaled by the official
# VPT/MaPLe ratio 0.0025/0.0035 (= 0.0143; not re-tuned for VPT; source-val 85.0, docs/baselines.md).
#   python tools/train.py configs/shapes/vpt_fewshot.py --work-dir work_dirs/train/shapes_vpt_16shot
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_vpt.py', '../_base_/train/vpt_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(optimizer=dict(lr=0.02 * 0.0025 / 0.0035), train_view=dict(crop_scale=(0.85, 1.0)))
