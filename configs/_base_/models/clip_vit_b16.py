# CLIP ViT-B/16 with OpenAI weights (QuickGELU), hand-crafted prompts.
model = dict(
    backbone=dict(type='OpenCLIP', model_name='ViT-B-16-quickgelu', pretrained='openai', precision='amp'),
    prompt_learner=dict(type='TemplatePrompts', templates='single'),
    text_chunk_size=None)
