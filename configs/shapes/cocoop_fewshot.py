# CoCoOp prompts on the tiny CLIP: CoCoOp's few-shot recipe (configs/_base_/train/cocoop_fewshot.py: 10 epochs,
# batch 1, SGD lr 0.002, cosine) with 16 shots per class of the source domain's (photo) train split and crops of
# 85-100% area (as for CoOp and MaPLe on shapes: the tiny model was pretrained on near-full 32 px views).
#   python tools/train.py configs/shapes/cocoop_fewshot.py
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_cocoop.py', '../_base_/train/cocoop_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(train_view=dict(crop_scale=(0.85, 1.0)), val_batch_size=64)
