# The shipped initial MaPLe prompts of the tiny CLIP: MaPLe's few-shot recipe, 16 shots per class of the source
# domain's (photo) train split, validated on its val split.
#   python tools/train.py configs/shapes/maple_fewshot.py --work-dir work_dirs/train/shapes_maple_16shot
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_maple_init.py',
          '../_base_/train/maple_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(train_view=dict(crop_scale=(0.5, 1.0)))
