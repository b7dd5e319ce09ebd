# MaPLe on the base classes for the base-to-novel suite: the shapes MaPLe training (configs/shapes/maple_fewshot.py)
# at MaPLe's own lr 0.0035 instead of the 0.02 chosen there for all 20 classes. Chosen on the base classes' val
# split (last-epoch val top-1, seed 1): 89.2 at 0.0035, 85.6 at 0.01, 77.6 at 0.02 (the higher rates lose the
# initial 88.0 within an epoch on 160 training images).
_base_ = ['../maple_fewshot.py']
trainer = dict(optimizer=dict(lr=0.0035))
