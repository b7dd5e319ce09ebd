# CoOp prompts on the tiny CLIP: CoOp's few-shot recipe (configs/_base_/train/coop_fewshot.py: 50 epochs, batch 32,
# SGD, cosine) with 4 context tokens from "a photo of a" (TPT's CoOp prompt), 16 shots per class of the source
# domain's (photo) train split, and two choices: crops of 85-100% area (as for MaPLe, configs/shapes/maple_fewshot.py)
# and lr 0.005, chosen on the base classes' val split (last-epoch val top-1 88.4 / 89.2 / 85.2 at lr 0.002 / 0.005 /
# 0.01, 16 shots of the 10 base classes, seed 0).
#   python tools/train.py configs/shapes/coop_fewshot.py
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_coop.py', '../_base_/train/coop_fewshot.py']
train_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                               domain='photo', split='train', per_class=200), num_workers=0)
val_data = dict(dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes',
                             domain='photo', split='val', per_class=25))
trainer = dict(optimizer=dict(lr=0.005), train_view=dict(crop_scale=(0.85, 1.0)))
