# The shipped initial MaPLe prompts of the tiny CLIP: MaPLe's few-shot recipe, 16 shots per class of the source
# domain's (photo) train split, with two choices made on its val split (docs/results.md): lr 0.02 (the tiny
# model's prompts are 8x narrower than ViT-B/16's) and crops of 85-100% area (the model was pretrained on
# near-full views; MaPLe's 8-100% crops of a 32 px image lower val accuracy by ~3 points).
#   python tools/train.py configs/shapes/maple_fewshot.py --work-dir work_dirs/train/shapes_maple_16shot
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_maple_init.py',
          '../_base_/train/maple_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(optimizer=dict(lr=0.02), train_view=dict(crop_scale=(0.85, 1.0)))
