"""The value transformations of a Dassl config's mapped keys (``data/dassl_mapping.yaml``: verdict ``map``).

:class:`Builder` reads the merged values once, builds the promptsync overrides and the ``_base_`` list, and records
for every key it read what became of it (``to`` and a note) or why it is refused; :meth:`Builder.verdict` turns the
table's rule and that record into the key's :class:`~.dassl_config.Entry`.
"""
from __future__ import annotations

import inspect
from typing import Any

from promptsync.errors import ConfigError

from .dassl_config import Entry, mapping_table

TRAINERS = ('CoOp', 'CoCoOp', 'MaPLe', 'IVLP', 'VPT', 'PromptAlign')
LEARNER = dict(CoOp='CoOp', CoCoOp='CoCoOp', MaPLe='MaPLe', IVLP='IVLP', VPT='VPT', PromptAlign='MaPLe')
DATA_ROOT = '{{$PROMPTSYNC_DATA:data}}'
OPTIMIZERS = dict(sgd='SGD', adam='Adam', amsgrad='Adam', adamw='AdamW', rmsprop='RMSprop')
#: the optimizer keys each Dassl optimizer reads (dassl/optim/optimizer.py build_optimizer)
OPTIMIZER_KEYS = dict(sgd=('MOMENTUM', 'SGD_DAMPNING', 'SGD_NESTEROV'), rmsprop=('MOMENTUM', 'RMSPROP_ALPHA'),
                      adam=('ADAM_BETA1', 'ADAM_BETA2'), amsgrad=('ADAM_BETA1', 'ADAM_BETA2'),
                      adamw=('ADAM_BETA1', 'ADAM_BETA2'))
#: the recipe base a converted training config starts from (every value the YAML sets is written over it)
TRAIN_BASES = dict(CoOp='coop', CoCoOp='cocoop', MaPLe='maple', PromptAlign='maple', IVLP='ivlp', VPT='vpt')
TRAIN_TRANSFORMS = ('random_resized_crop', 'random_flip', 'normalize')


def backbone_preprocessing(model_name: str) -> dict:
    """Input size, mean, std and interpolation of an open_clip model, without building it (the values
    ``OpenCLIP.preprocess_cfg`` ends up with: open_clip's model config, OpenAI's mean/std, bicubic)."""
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    from promptsync.models.backbones.openclip import register_model_configs
    register_model_configs()
    mc = open_clip.get_model_config(model_name) or {}
    size = (mc.get('vision_cfg') or {}).get('image_size', 224)
    pp = mc.get('preprocess_cfg') or {}
    return dict(size=(size, size) if isinstance(size, int) else tuple(size), mean=tuple(pp.get('mean', OPENAI_DATASET_MEAN)),
                std=tuple(pp.get('std', OPENAI_DATASET_STD)), interpolation=pp.get('interpolation', 'bicubic'))


def dataset_arguments(type_name: str) -> set[str]:
    from promptsync.registry import DATASETS
    cls = DATASETS.get(type_name)
    names: set[str] = set()
    for klass in (cls.__mro__ if cls is not None else ()):   # ``**options`` passed on to a base class
        if '__init__' not in klass.__dict__:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


class Builder:
    def __init__(self, values: dict, defaults: dict, job: str, prompt_checkpoint: str | None = None):
        self.v, self.d, self.job = values, defaults, job
        self.records: dict[str, tuple[str, str, str]] = {}   # key -> (verdict, to, note)
        self.problems: list[Entry] = []                       # refusals of combinations
        self.tables = mapping_table()
        self.trainer = self._trainer()
        self.sec = f'TRAINER.{self.trainer.upper()}'
        self.out: dict[str, Any] = {}
        self._bases = ['_base_/default_runtime.py']
        self._runtime()
        self._model(prompt_checkpoint)
        self._dataset()
        if job == 'train':
            self._trainer_cfg()
        elif self.trainer == 'PromptAlign':
            self._tta()
        else:
            self._bases.append('_base_/tta/zeroshot.py')
            self._set('data.batch_size', int(values['DATALOADER.TEST.BATCH_SIZE']))
            self.mapped('DATALOADER.TEST.BATCH_SIZE', 'data.batch_size', 'does not change predictions')

    # ------------------------------------------------------------------ recording
    def mapped(self, key: str, to: str, note: str = '') -> None:
        self.records[key] = ('mapped', to, note)

    def ignored(self, key: str, note: str) -> None:
        self.records[key] = ('ignored', '', note)

    def refuse(self, key: str, note: str) -> None:
        self.records[key] = ('refused', '', note)

    def check(self, key: str, ok: bool, note: str, refusal: str) -> None:
        """A value promptsync reproduces only as it is: mapped as '(checked)' when ``ok``, else refused."""
        if ok:
            self.mapped(key, '(checked)', note)
        else:
            self.refuse(key, refusal)

    def problem(self, key: str, note: str) -> None:
        self.problems.append(Entry(key, self.v.get(key), 'refused', note=note))

    def verdict(self, key: str, value: Any, rule: dict) -> Entry:
        default = key in self.d and value == self.d[key]
        trainers = rule.get('trainers')
        if trainers and self.trainer not in trainers:
            return Entry(key, value, 'ignored', note=f"read only by the {'/'.join(trainers)} trainer "
                         f'(TRAINER.NAME is {self.trainer})', default=default)
        if rule.get('jobs') and self.job not in rule['jobs']:
            return Entry(key, value, 'ignored', note=f"{rule['other']} (a {self.job} job)", default=default)
        kind = rule['verdict']
        if kind == 'ignore':
            return Entry(key, value, 'ignored', note=rule['reason'], default=default)
        if kind == 'unsupported':
            if default:
                return Entry(key, value, 'ignored', note=f"default, no effect ({rule['reason']})", default=True)
            return Entry(key, value, 'refused', note=f"{rule['reason']} is not supported (default "
                         f"{self.d.get(key)!r}); {rule['fix']}")
        if key not in self.records:
            raise RuntimeError(f'{key} is mapped in dassl_mapping.yaml but dassl_build.py did not read it')
        verdict, to, note = self.records[key]
        return Entry(key, value, verdict, to=to, note=note, default=default)

    # ------------------------------------------------------------------ results
    def bases(self) -> list[str]:
        return list(self._bases)

    def overrides(self) -> dict:
        return self.out

    def _set(self, dotted: str, value: Any) -> None:
        node = self.out
        *parents, last = dotted.split('.')
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    # ------------------------------------------------------------------ sections
    def _trainer(self) -> str:
        name = self.v['TRAINER.NAME']
        if name not in TRAINERS:
            why = ('is empty: the YAML does not name its trainer (Dassl\'s scripts pass --trainer NAME)' if not name
                   else f"'{name}' is not a trainer promptsync converts")
            raise ConfigError(f'TRAINER.NAME {why}', where='TRAINER.NAME',
                              fix=f"pass --trainer NAME, one of {', '.join(TRAINERS)}")
        self.mapped('TRAINER.NAME', 'model.prompt_learner.type', f'{name} -> {LEARNER[name]}'
                    + (' (+ MaPLe+TPT / PromptAlign at test time)' if name == 'PromptAlign' else ''))
        return name

    def _runtime(self) -> None:
        seed = self.v['SEED']
        if seed < 0:
            self._set('seed', 0)
            self.mapped('SEED', 'seed', '-1 (Dassl: unseeded) -> 0: promptsync always seeds (set it with --seed)')
        else:
            self._set('seed', int(seed))
            self.mapped('SEED', 'seed')
        self._set('device', 'auto' if self.v['USE_CUDA'] else 'cpu')
        self.mapped('USE_CUDA', 'device', f"-> {self.out['device']!r}")
        workers = int(self.v['DATALOADER.NUM_WORKERS'])
        self._set('train_data.num_workers' if self.job == 'train' else 'data.num_workers', workers)
        self.mapped('DATALOADER.NUM_WORKERS', 'train_data.num_workers' if self.job == 'train' else 'data.num_workers')

    def _model(self, prompt_checkpoint: str | None) -> None:
        name = self.v['MODEL.BACKBONE.NAME']
        table = self.tables['backbones']
        if name not in table:
            raise ConfigError(f"MODEL.BACKBONE.NAME '{name}' is not a backbone promptsync converts",
                              where='MODEL.BACKBONE.NAME',
                              fix=f"use one of {', '.join(table)} (OpenAI CLIP names; ps-shapes-vit = the embedded tiny CLIP)")
        entry = table[name]
        self.backbone = entry
        self._bases.append(f"_base_/models/{entry.get('base', 'clip_vit_b16.py')}")
        precision = self.tables['precisions'][self.v[f'{self.sec}.PREC']] if f'{self.sec}.PREC' in self.v else 'amp'
        backbone = dict(type='OpenCLIP', model_name=entry['model_name'], precision=precision)
        if 'pretrained' in entry:
            backbone['pretrained'] = entry['pretrained']
        self._set('model.backbone', backbone)
        self.mapped('MODEL.BACKBONE.NAME', 'model.backbone.model_name / pretrained',
                    f"-> {entry['model_name']!r}, pretrained {entry.get('pretrained', 'the shipped weights')!r}")
        prec = self.v.get(f'{self.sec}.PREC')
        self.mapped(f'{self.sec}.PREC', 'model.backbone.precision', f'{prec} -> {precision!r}'
                    + (' (fp32 weights + fp16 autocast on CUDA; Dassl casts CLIP to fp16)' if prec == 'fp16' else ''))
        self._preprocessing(entry['model_name'])
        self._set('model.prompt_learner', dict(_delete_=True, **self._learner()))  # replaces the base's prompts
        if self.job == 'test':
            if prompt_checkpoint:
                self._set('model.prompt_checkpoint', prompt_checkpoint)
            else:
                self.problem('TRAINER.NAME', f'a test of trained {self.trainer} prompts needs them (Dassl\'s '
                             '--model-dir/--load-epoch): give --cfg-options model.prompt_checkpoint=FILE '
                             '(tools/test.py) or --prompt-checkpoint FILE (tools/convert_config.py)')

    def _preprocessing(self, model_name: str) -> None:
        pp = backbone_preprocessing(model_name)
        size = tuple(self.v['INPUT.SIZE'])
        checks = [('INPUT.SIZE', size == pp['size'], str(pp['size'])),
                  ('INPUT.INTERPOLATION', self.v['INPUT.INTERPOLATION'] == pp['interpolation'], repr(pp['interpolation'])),
                  ('INPUT.PIXEL_MEAN', _close(self.v['INPUT.PIXEL_MEAN'], pp['mean']), str(list(pp['mean']))),
                  ('INPUT.PIXEL_STD', _close(self.v['INPUT.PIXEL_STD'], pp['std']), str(list(pp['std'])))]
        for key, ok, want in checks:
            self.check(key, ok, f"equals the backbone's preprocessing ({model_name})",
                       f"promptsync sizes and normalises every view like the backbone ({model_name}: {want}); "
                       f'write {key}: {want}')

    def _ctx_init(self, key: str) -> str | None:
        text = self.v[key]
        self.mapped(key, 'model.prompt_learner.ctx_init', "'' -> None (random N(0, 0.02) context)" if not text else '')
        return text or None

    def _learner(self) -> dict:
        s, t = self.sec, self.trainer
        if t in ('CoOp', 'CoCoOp'):
            ctx_init = self._ctx_init(f'{s}.CTX_INIT')
            n_ctx = None if ctx_init else int(self.v[f'{s}.N_CTX'])
            self.mapped(f'{s}.N_CTX', 'model.prompt_learner.n_ctx', f'no effect: the words of CTX_INIT set the count ({t})'
                        if ctx_init else '')
            learner = dict(type=t, n_ctx=n_ctx, ctx_init=ctx_init)
            if t == 'CoOp':
                learner.update(class_token_position=self.v[f'{s}.CLASS_TOKEN_POSITION'],
                               class_specific=bool(self.v[f'{s}.CSC']))
                self.mapped(f'{s}.CLASS_TOKEN_POSITION', 'model.prompt_learner.class_token_position')
                self.mapped(f'{s}.CSC', 'model.prompt_learner.class_specific')
            return learner
        if t in ('MaPLe', 'PromptAlign'):
            n_ctx = int(self.v[f'{s}.N_CTX'])
            ctx_init = self._ctx_init(f'{s}.CTX_INIT')
            if ctx_init and n_ctx > 4:
                ctx_init = None
                self.mapped(f'{s}.CTX_INIT', 'model.prompt_learner.ctx_init', 'N_CTX > 4: random init, as MaPLe')
            self.mapped(f'{s}.N_CTX', 'model.prompt_learner.n_ctx')
            self.mapped(f'{s}.PROMPT_DEPTH', 'model.prompt_learner.depth')
            return dict(type='MaPLe', n_ctx=n_ctx, ctx_init=ctx_init, depth=int(self.v[f'{s}.PROMPT_DEPTH']))
        if t == 'IVLP':
            for key, to in (('N_CTX_TEXT', 'n_ctx_text'), ('N_CTX_VISION', 'n_ctx_vision'),
                            ('PROMPT_DEPTH_TEXT', 'depth_text'), ('PROMPT_DEPTH_VISION', 'depth_vision')):
                self.mapped(f'{s}.{key}', f'model.prompt_learner.{to}')
            return dict(type='IVLP', n_ctx_text=int(self.v[f'{s}.N_CTX_TEXT']), n_ctx_vision=int(self.v[f'{s}.N_CTX_VISION']),
                        ctx_init=self._ctx_init(f'{s}.CTX_INIT'), depth_text=int(self.v[f'{s}.PROMPT_DEPTH_TEXT']),
                        depth_vision=int(self.v[f'{s}.PROMPT_DEPTH_VISION']))
        words = self.v[f'{s}.CTX_INIT'].strip()   # VPT: the fixed text prompt
        templates = 'single' if words in ('a photo of a', '') else [f'{words} {{}}.']
        self.mapped(f'{s}.CTX_INIT', 'model.prompt_learner.templates', f'-> {templates!r}')
        self.mapped(f'{s}.N_CTX_VISION', 'model.prompt_learner.n_ctx_vision')
        self.mapped(f'{s}.PROMPT_DEPTH_VISION', 'model.prompt_learner.depth')
        return dict(type='VPT', n_ctx_vision=int(self.v[f'{s}.N_CTX_VISION']),
                    depth=int(self.v[f'{s}.PROMPT_DEPTH_VISION']), templates=templates)

    def _dataset(self) -> None:
        name = self.v['DATASET.NAME']
        table = self.tables['datasets']
        if name not in table:
            raise ConfigError(f"DATASET.NAME {repr(name) if name else 'is empty'}: "
                              + ('not a dataset promptsync has' if name else 'no dataset YAML given'),
                              where='DATASET.NAME', fix='give the dataset YAML (--dataset-config-file) naming one of '
                              + ', '.join(table))
        entry, train = table[name], self.job == 'train'
        self.dataset_entry = entry
        args = dataset_arguments(entry['type'])
        shapes = entry['type'] == 'SyntheticShapes'
        prefix = 'train_data.dataset' if train else 'data.dataset'
        root = self.v['DATASET.ROOT']
        ds: dict[str, Any] = {}
        if train:
            ds = dict(type=entry['type'], root=(root or DATA_ROOT) + ('/synthetic_shapes' if shapes else ''))
            if 'split' in args:
                ds['split'] = 'train'
        else:
            self._bases.append(f"_base_/datasets/{entry['base']}")
            if root:
                ds['root'] = root + ('/synthetic_shapes' if shapes else '')
        self.mapped('DATASET.NAME', f'{prefix}.type', f"-> {entry['type']}" + ('' if train else f" (_base_/datasets/{entry['base']})"))
        self.mapped('DATASET.ROOT', f'{prefix}.root', '' if root else "'' -> the base's {{$PROMPTSYNC_DATA:data}}")
        sub = self.v['DATASET.SUBSAMPLE_CLASSES']
        if sub != 'all':
            if 'subsample' in args:
                ds['subsample'] = sub
                self.mapped('DATASET.SUBSAMPLE_CLASSES', f'{prefix}.subsample')
            else:
                self.refuse('DATASET.SUBSAMPLE_CLASSES', f"{entry['type']} has no base/new halves; use 'all'")
        else:
            self.mapped('DATASET.SUBSAMPLE_CLASSES', f'{prefix}.subsample', "'all' (the dataset's default)")
        domain_key = 'DATASET.SOURCE_DOMAINS' if train else 'DATASET.TARGET_DOMAINS'
        domains = list(self.v[domain_key])
        if shapes:
            if len(domains) > 1:
                self.refuse(domain_key, 'give one domain (promptsync trains and tests on one domain per run)')
            elif domains:
                ds['domain'] = domains[0]
                self.mapped(domain_key, f'{prefix}.domain')
            else:
                if train:
                    ds['domain'] = 'photo'
                self.mapped(domain_key, f'{prefix}.domain', "empty -> 'photo' (the source domain)" if train
                            else "empty -> the base's 'sketch'")
        elif domains:
            self.refuse(domain_key, f"{entry['type']} has no domains (CoOp's datasets); remove {domain_key}")
        else:
            self.mapped(domain_key, f'{prefix}.domain', f"empty (CoOp's datasets have no domains)")
        if train:
            shots = int(self.v['DATASET.NUM_SHOTS'])
            self._set('train_data.num_shots', shots if shots > 0 else None)
            self.mapped('DATASET.NUM_SHOTS', 'train_data.num_shots', '' if shots > 0 else '-1 -> None (every image)')
            self.shots, self.ds_args = shots, args
        else:
            split = self.v['TEST.SPLIT']
            if split not in ('test', 'val'):
                self.refuse('TEST.SPLIT', "use 'test' or 'val'")
            elif 'split' in args:
                ds['split'] = 'val' if entry['type'] == 'ImageNet' else split
                self.mapped('TEST.SPLIT', f'{prefix}.split', "ImageNet's test set is its val split (CoOp)"
                            if entry['type'] == 'ImageNet' else '')
            else:
                self.mapped('TEST.SPLIT', f'{prefix}.split', f"{entry['type']} has one split (test = val in CoOp)")
            if self.trainer == 'PromptAlign':
                tpt = self.v['DATASET.TPT']
                self.check('DATASET.TPT', tpt in entry['tpt'], f'names {name}',
                           f"PromptAlign would test on set '{tpt}', but DATASET.NAME is {name} (its id: "
                           f"{entry['tpt'][0]!r}); write DATASET.TPT {entry['tpt'][0]!r} or use the dataset YAML of "
                           'that set')
        if ds:
            self._set(prefix, ds)

    def _trainer_cfg(self) -> None:
        self._bases.append(f'_base_/train/{TRAIN_BASES.get(self.trainer, "maple")}_fewshot.py')  # the recipe family
        v = self.v
        self._set('train_data.batch_size', int(v['DATALOADER.TRAIN_X.BATCH_SIZE']))
        self.mapped('DATALOADER.TRAIN_X.BATCH_SIZE', 'train_data.batch_size')
        transforms = list(v['INPUT.TRANSFORMS'])
        other = [t for t in transforms if t not in TRAIN_TRANSFORMS]
        if other or 'random_resized_crop' not in transforms or 'normalize' not in transforms:
            self.refuse('INPUT.TRANSFORMS', f"PromptTrainer implements {list(TRAIN_TRANSFORMS)} (random resized "
                        f"crop, optional flip, normalisation); {other or transforms} cannot be reproduced")
        else:
            self.mapped('INPUT.TRANSFORMS', 'trainer.train_view', f"TrainView(flip={'random_flip' in transforms})")
        self._set('trainer.train_view', dict(type='TrainView', crop_scale=tuple(float(x) for x in v['INPUT.RRCROP_SCALE']),
                                             flip='random_flip' in transforms))
        self.mapped('INPUT.RRCROP_SCALE', 'trainer.train_view.crop_scale')
        self._optimizer()
        self._schedule()
        self._set('trainer.log_interval', int(v['TRAIN.PRINT_FREQ']))
        self.mapped('TRAIN.PRINT_FREQ', 'trainer.log_interval')
        final = v['TEST.FINAL_MODEL']
        if final not in ('last_step', 'best_val'):
            self.refuse('TEST.FINAL_MODEL', "use 'last_step' or 'best_val'")
            return
        self._set('trainer.final_model', 'last' if final == 'last_step' else 'best_val')
        self.mapped('TEST.FINAL_MODEL', 'trainer.final_model', f"-> {self.out['trainer']['final_model']!r}")
        if final == 'best_val':
            val = dict(self.out['train_data']['dataset'])
            if 'split' in self.ds_args:
                val['split'] = 'val'
            if 'num_shots' in self.ds_args and self.shots > 0:
                val['num_shots'] = min(self.shots, 4)   # CoOp's datasets: val = min(NUM_SHOTS, 4) shots per class
            self._set('val_data', dict(dataset=val))

    def _optimizer(self) -> None:
        v, name = self.v, self.v['OPTIM.NAME']
        if name not in OPTIMIZERS:
            self.refuse('OPTIM.NAME', f"'{name}' has no equivalent (Dassl's RAdam is its own implementation); use one "
                        f"of {', '.join(OPTIMIZERS)}")
            for key in ('LR', 'WEIGHT_DECAY', 'MOMENTUM', 'SGD_DAMPNING', 'SGD_NESTEROV', 'RMSPROP_ALPHA', 'ADAM_BETA1',
                        'ADAM_BETA2'):
                self.ignored(f'OPTIM.{key}', 'OPTIM.NAME is refused')
            return
        opt: dict[str, Any] = dict(_delete_=True, type=OPTIMIZERS[name], lr=float(v['OPTIM.LR']))
        self.mapped('OPTIM.NAME', 'trainer.optimizer.type', f'-> {OPTIMIZERS[name]}' + (' (amsgrad=True)' if name == 'amsgrad' else ''))
        self.mapped('OPTIM.LR', 'trainer.optimizer.lr')
        reads = OPTIMIZER_KEYS[name]
        if 'MOMENTUM' in reads:
            opt['momentum'] = float(v['OPTIM.MOMENTUM'])
        opt['weight_decay'] = float(v['OPTIM.WEIGHT_DECAY'])
        self.mapped('OPTIM.WEIGHT_DECAY', 'trainer.optimizer.weight_decay')
        if name == 'sgd':
            if v['OPTIM.SGD_DAMPNING'] != 0:
                opt['dampening'] = float(v['OPTIM.SGD_DAMPNING'])
            if v['OPTIM.SGD_NESTEROV']:
                opt['nesterov'] = True
        if name == 'rmsprop':
            opt['alpha'] = float(v['OPTIM.RMSPROP_ALPHA'])
        if 'ADAM_BETA1' in reads:
            opt['betas'] = (float(v['OPTIM.ADAM_BETA1']), float(v['OPTIM.ADAM_BETA2']))
        if name == 'amsgrad':
            opt['amsgrad'] = True
        targets = dict(MOMENTUM='momentum', SGD_DAMPNING='dampening', SGD_NESTEROV='nesterov', RMSPROP_ALPHA='alpha',
                       ADAM_BETA1='betas[0]', ADAM_BETA2='betas[1]')
        for key, to in targets.items():
            if key in reads:
                self.mapped(f'OPTIM.{key}', f'trainer.optimizer.{to}')
            else:
                self.ignored(f'OPTIM.{key}', f"not read by Dassl's {name} optimizer")
        self._set('trainer.optimizer', opt)

    def _schedule(self) -> None:
        v = self.v
        if v['OPTIM.LR_SCHEDULER'] != 'cosine':
            self.refuse('OPTIM.LR_SCHEDULER', "PromptTrainer has Dassl's cosine schedule only (with an optional "
                        "constant warm-up); use cosine")
        else:
            self.mapped('OPTIM.LR_SCHEDULER', 'trainer (WarmupCosineLR)', 'T_max = MAX_EPOCH, eta_min = 0')
        self._set('trainer.epochs', int(v['OPTIM.MAX_EPOCH']))
        self.mapped('OPTIM.MAX_EPOCH', 'trainer.epochs')
        warmup = int(v['OPTIM.WARMUP_EPOCH'])
        self._set('trainer.warmup_epochs', max(warmup, 0))
        self.mapped('OPTIM.WARMUP_EPOCH', 'trainer.warmup_epochs', '' if warmup > 0 else f'{warmup} -> 0 (no warm-up)')
        if warmup <= 0:
            for key in ('WARMUP_TYPE', 'WARMUP_CONS_LR', 'WARMUP_RECOUNT'):
                self.ignored(f'OPTIM.{key}', 'no warm-up (OPTIM.WARMUP_EPOCH <= 0)')
            return
        self.check('OPTIM.WARMUP_TYPE', v['OPTIM.WARMUP_TYPE'] == 'constant', 'constant',
                   "PromptTrainer's warm-up is constant (Dassl's ConstantWarmupScheduler); use constant")
        self._set('trainer.warmup_lr', float(v['OPTIM.WARMUP_CONS_LR']))
        self.mapped('OPTIM.WARMUP_CONS_LR', 'trainer.warmup_lr')
        self.check('OPTIM.WARMUP_RECOUNT', bool(v['OPTIM.WARMUP_RECOUNT']), 'True',
                   'the cosine of PromptTrainer restarts its count after the warm-up (Dassl: WARMUP_RECOUNT True); '
                   'use True')

    def _tta(self) -> None:
        v = self.v
        self.ignored('DATALOADER.TEST.BATCH_SIZE', "PromptAlign's TPT loader always uses batch 1; the base's "
                     'data.batch_size is kept (it does not change predictions)')
        self.check('TPT.RUN', bool(v['TPT.RUN']), "True: TPT's views",
                   "PromptAlign's loop over un-augmented batches is not implemented; use True (TPT views), or "
                   'TRAINER.NAME MaPLe to evaluate the prompts without adaptation')
        self.check('TPT.ALIGN_THRESHOLD', v['TPT.ALIGN_THRESHOLD'] == v['TPT.TPT_THRESHOLD'], 'equals TPT_THRESHOLD',
                   f"the alignment loss reads the views selected for the entropy (TPT_THRESHOLD "
                   f"{v['TPT.TPT_THRESHOLD']}); write the same value")
        entropy, align = bool(v['TPT.TPT_LOSS']), bool(v['TPT.DISTR_ALIGN'])
        losses = [dict(type='MarginalEntropyLoss', weight=1.0)] if entropy else []
        self.mapped('TPT.TPT_LOSS', 'tta.losses[MarginalEntropyLoss]', 'present' if entropy else 'absent')
        self.mapped('TPT.DISTR_ALIGN', 'tta.losses / _base_', '_base_/tta/promptalign.py' if align else '_base_/tta/maple_tpt.py')
        lo, hi = int(v['TPT.ALIGN_LAYER_FROM']), int(v['TPT.ALIGN_LAYER_TO'])
        if align:
            layers = tuple(range(lo, hi - 1))
            if not layers:
                self.refuse('TPT.ALIGN_LAYER_TO', f'PromptAlign aligns layers range(FROM, TO-1) = none for {lo}, {hi}; '
                            'use ALIGN_LAYER_TO >= ALIGN_LAYER_FROM + 2')
            weight = float(v['TPT.DISTR_LOSS_W']) / (hi - lo)
            losses.append(dict(type='DistributionAlignmentLoss', weight=weight, layers=layers, mean_weight=0.5,
                               var_weight=0.5))
            for key in ('TPT.ALIGN_LAYER_FROM', 'TPT.ALIGN_LAYER_TO'):
                self.mapped(key, 'tta.losses[DistributionAlignmentLoss].layers / weight', f'layers {layers}')
            self.mapped('TPT.DISTR_LOSS_W', 'tta.losses[DistributionAlignmentLoss].weight', f'/ ({hi} - {lo}) = {weight:.6g}')
            proto = self.backbone.get('prototypes')
            if proto:
                self._bases.append(f'_base_/prototypes/{proto}')
            else:
                self.problem('TPT.DISTR_ALIGN', f"the alignment needs source statistics; promptsync ships prototype "
                             f"configs for ViT-B/16 and ps-shapes-vit only: compute a bank (tools/compute_prototypes.py) "
                             f"for {v['MODEL.BACKBONE.NAME']}")
        else:
            for key in ('TPT.ALIGN_LAYER_FROM', 'TPT.ALIGN_LAYER_TO', 'TPT.DISTR_LOSS_W'):
                self.ignored(key, 'no alignment loss (TPT.DISTR_ALIGN False)')
        if not losses:
            self.problem('TPT.TPT_LOSS', 'TPT_LOSS and DISTR_ALIGN are both False: PromptAlign would have no loss')
        self._bases.append('_base_/tta/promptalign.py' if align else '_base_/tta/maple_tpt.py')
        self._set('tta', dict(views=dict(n_views=int(v['TPT.BATCH_SIZE'])),
                              selection=dict(ratio=float(v['TPT.TPT_THRESHOLD'])),
                              optimizer=dict(lr=float(v['TPT.LR'])), steps=int(v['TPT.TTA_STEPS']), losses=losses))
        self.mapped('TPT.BATCH_SIZE', 'tta.views.n_views')
        self.mapped('TPT.TPT_THRESHOLD', 'tta.selection.ratio')
        self.mapped('TPT.LR', 'tta.optimizer.lr', "AdamW (PromptAlign's, torch's defaults otherwise)")
        self.mapped('TPT.TTA_STEPS', 'tta.steps')


def _close(a, b, tol: float = 1e-6) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))
