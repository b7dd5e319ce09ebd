# CoCoOp on the base classes of a dataset (base-to-novel): its recipe vit_b16_c4_ep10_batch1_ctxv1
# (configs/_base_/train/cocoop_fewshot.py: 10 epochs, batch 1, 4 tokens from "a photo of a"); 16 shots per base
# class. The base-to-novel suite sets train_data.dataset per dataset and the seed.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/cocoop_vit_b16.py', '../_base_/train/cocoop_fewshot.py']
train_data = dict(dataset=dict(type='OxfordPets', split='train', subsample='base', root='{{$PROMPTSYNC_DATA:data}}'))
val_data = None  # CoCoOp keeps the last epoch
seed = 1
