# MaPLe on the base classes of a dataset (base-to-novel): its recipe vit_b16_c2_ep5_batch4_2ctx
# (configs/_base_/train/maple_fewshot.py: 5 epochs, batch 4, SGD lr 0.0035) with prompt depth 9 (the base-to-novel
# depth; DG / cross-dataset use 3); 16 shots per base class. The base-to-novel suite sets train_data.dataset per
# dataset and the seed; its MaPLe-based methods test with depth 9 too.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/maple_vit_b16.py', '../_base_/train/maple_fewshot.py']
model = dict(prompt_learner=dict(depth=9))
train_data = dict(dataset=dict(type='OxfordPets', split='train', subsample='base', root='{{$PROMPTSYNC_DATA:data}}'))
val_data = None  # MaPLe keeps the last epoch
seed = 1
