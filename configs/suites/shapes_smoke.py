# CI smoke run of the demo path: two images per class and domain, 8 views, a small proxy set, one seed.
# The small proxy set makes another prototype bank than the demo's: it gets its own file, so the smoke run never
# replaces the bank the full configs use (a bank of another source at a path is refused, never overwritten).
_base_ = ['./shapes_demo.py']
SMOKE_BANK = '{{$PROMPTSYNC_CKPT:checkpoints}}/shapes/smoke/prototypes_ps_shapes_vit_maple_photo_train5.safetensors'
SMOKE_PROTO = {'tta.views.n_views': 8, 'proxy_data.dataset.per_class': 5, 'prototypes.file': SMOKE_BANK}
suite = dict(
    name='shapes-smoke',
    methods=dict(
        tpt=dict(cfg_options={'tta.views.n_views': 8}),
        promptalign=dict(cfg_options=SMOKE_PROTO),
        promptsync=dict(cfg_options=SMOKE_PROTO)),
    cfg_options={'data.dataset.per_class': 2})
