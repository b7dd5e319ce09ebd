# MaPLe prompts trained on 16-shot ImageNet (2 tokens, depth 3, the cross-dataset / DG recipe): the starting
# point of MaPLe+TPT, PromptAlign and PromptSync. Convert the released checkpoint once with
#   python tools/convert_checkpoint.py .../MultiModalPromptLearner/model.pth.tar-2 $PROMPTSYNC_CKPT/maple/...
# (PromptAlign uses the epoch-2 checkpoint of seed 1; see docs/method.md).
_base_ = ['./maple_vit_b16.py']
model = dict(
    prompt_checkpoint='{{$PROMPTSYNC_CKPT:checkpoints}}/maple/vit_b16_c2_ep2_depth3_imagenet_seed1.safetensors')
