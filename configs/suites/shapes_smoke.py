# CI smoke run of the demo path: two images per class and domain, 8 views, a small proxy set, one seed.
_base_ = ['./shapes_demo.py']
suite = dict(
    name='shapes-smoke',
    methods=dict(
        tpt=dict(cfg_options={'tta.views.n_views': 8}),
        promptalign=dict(cfg_options={'tta.views.n_views': 8, 'proxy_data.dataset.per_class': 5}),
        promptsync=dict(cfg_options={'tta.views.n_views': 8, 'proxy_data.dataset.per_class': 5})),
    cfg_options={'data.dataset.per_class': 2, 'hooks': []})
