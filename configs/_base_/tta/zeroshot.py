# No adaptation: one centre-cropped view per image, predictions with the current prompts.
tta = dict(type='ZeroShot', views=dict(type='OriginalView'))
