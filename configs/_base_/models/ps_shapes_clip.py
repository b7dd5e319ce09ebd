# The embedded benchmark's tiny CLIP (pretrained by tools/pretrain_tiny_clip.py, shipped with the package) with
# hand-crafted prompts. precision fp32: the model is tiny and runs on the CPU.
model = dict(
    backbone=dict(type='OpenCLIP', model_name='ps-shapes-vit', precision='fp32',
                  pretrained='{{ fileDirname }}/../../../promptsync/benchmarks/shapes/assets/ps-shapes-vit.safetensors'),
    prompt_learner=dict(type='TemplatePrompts', templates='single'),
    text_chunk_size=None)
