# Trained CoCoOp prompts evaluated as they are (no adaptation; every image conditions its own context) on the shapes
# benchmark; the base-to-novel suite (configs/suites/shapes_base_to_novel.py) sets model.prompt_checkpoint to the
# prompts it trained on the base classes.
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/ps_shapes_cocoop.py',
          '../../_base_/datasets/shapes.py', '../../_base_/tta/zeroshot.py']
data = dict(batch_size=100)
