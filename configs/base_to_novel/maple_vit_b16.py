# Trained MaPLe prompts (configs/base_to_novel/maple_vit_b16_train.py) evaluated as they are, no adaptation; the
# base-to-novel suite sets the dataset (base or new classes of the test split) and model.prompt_checkpoint.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/maple_vit_b16.py', '../_base_/datasets/oxford_pets.py',
          '../_base_/tta/zeroshot.py']
data = dict(batch_size=64)
model = dict(prompt_learner=dict(depth=9))
