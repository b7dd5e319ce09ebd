# TPT over MaPLe's multimodal prompts, with PromptAlign's settings: TPT's views (63 random-resized-crop + flip
# views plus the original; PromptAlign uses no AugMix on any dataset), the 10% lowest-entropy views, marginal
# entropy, one step, reset after every image — but AdamW lr 4e-2 on every prompt tensor (text context, deep text
# prompts and the text->vision couplings).
_base_ = ['./tpt.py']
tta = dict(optimizer=dict(lr=4e-2), update=dict(type='joint'))
