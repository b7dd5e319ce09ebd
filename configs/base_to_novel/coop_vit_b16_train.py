# CoOp on the base classes of a dataset (base-to-novel): CoOp's recipe (configs/_base_/train/coop_fewshot.py, 50
# epochs, batch 32) with 4 context tokens from "a photo of a" (TPT's CoOp prompt); 16 shots per base class. The
# base-to-novel suite (configs/suites/base_to_novel_vit_b16.py) sets train_data.dataset per dataset and the seed.
#   python tools/train.py configs/base_to_novel/coop_vit_b16_train.py --cfg-options \
#       "train_data.dataset=dict(type='OxfordPets', split='train', subsample='base', root='data')"
_base_ = ['../_base_/default_runtime.py', '../_base_/models/coop_vit_b16.py', '../_base_/train/coop_fewshot.py']
train_data = dict(dataset=dict(type='OxfordPets', split='train', subsample='base', root='{{$PROMPTSYNC_DATA:data}}'))
val_data = None  # CoOp keeps the last epoch
seed = 1
