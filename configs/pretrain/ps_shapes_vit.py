# Pretraining of the embedded benchmark's tiny CLIP (python tools/pretrain_tiny_clip.py configs/pretrain/ps_shapes_vit.py).
# A 4-layer ViT (32 px, patch 4, width 64) + a 3-layer text tower (width 64, context 16), open_clip's tokenizer,
# trained from scratch with the CLIP contrastive loss on captioned shapes: photos (the source domain) plus a
# small share of other styles (line drawings, clipart, sketches, cartoons), as web data would contain; no
# corrupted images. About 14 min on 2 CPU cores.
model_name = 'ps-shapes-vit'
seed = 0
data = dict(
    per_style=dict(photo=15000, drawing=700, clipart=700, sketch=800, cartoon=800),
    image_size=32, workers=2,
    eval_root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes', eval_per_class=25, test_per_class=50)
train = dict(epochs=28, batch_size=64, lr=1.5e-3, weight_decay=0.05, warmup_steps=300, grad_clip=1.0,
             freeze_token_embedding=True, crop_pad=3, flip=True, max_logit_scale=100)
output = dict(dir='promptsync/benchmarks/shapes/assets', name='ps-shapes-vit', dtype='float16')
