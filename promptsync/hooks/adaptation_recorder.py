"""``AdaptationRecorder``: how the adaptation moved each sample's prompts and features, one line per sample.

It makes the geometric claims about prompt tuning measurable (``tools/analyze.py`` turns the lines into tables and
figures): per sample, the change of the learnable prompt tensors on the text and the vision branch, the shift of
the image feature of the original view and of the class text features, the cosine between the two shifts
(cross-modal consistency), the spread of the adapted classifier, and the prediction with the initial prompts next
to the adapted one (so flips can be counted). The quantities are defined in :mod:`promptsync.analysis.measures`
and docs/analysis.md.

Exact and cheap: the adapted features are the ones the prediction was made of (``EpisodicTTA.predict`` keeps them
in ``ctx.extra``; the hook checks that they give the sample's logits), the initial text features are the method's
own (``initial_text_features``), and the initial image feature is the adapted one when the image encoder does not
depend on the prompts. With visual prompts (MaPLe) it is row 0 of the sample's first forward, which an episodic
method runs at the initial prompts (every view, for the selection); where no forward ran at the initial prompts
(zero steps, an online reset policy) it costs one forward of view 0. The hook only reads the context, so the
fast engine keeps batching with it (``batch_safe``); tests hold the predictions of a run with it equal to those
without it.

Files (:mod:`promptsync.analysis.layout`): ``adaptation.jsonl`` appended as samples finish (a resumed run appends
the samples it computes; a line recomputed after an interruption is the same line, the reader keeps the last),
``adaptation.json`` (fingerprint, field meanings, initial scales) and the sums that give the across-sample variance
of the adapted text embeddings (:mod:`promptsync.analysis.text_sums`), saved every ``sums_every`` samples and at
the end. Shards write their own tagged files. Outside a run (a method used on its own) nothing is written: the
lines are kept in ``records`` and the sums in ``sums``; ``attach(method)`` names the method.

Enable it with ``custom_hooks=[dict(type='AdaptationRecorder')]``, or with ``'../_base_/analysis.py'`` in place of
``'../_base_/default_runtime.py'`` in a config's ``_base_``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from promptsync.analysis import layout
from promptsync.analysis.measures import MIN_SHIFT, branch_change, class_spread, feature_shifts, tensor_norms
from promptsync.analysis.text_sums import TextSums
from promptsync.errors import ConfigError, ProvenanceError
from promptsync.evaluation.predictions import drop_torn_tail
from promptsync.models.prompt_learners.base import Prompts
from promptsync.registry import HOOKS

from .base import Hook

FORMAT = 1
FIELDS = {
    'pred / pred_initial': 'prediction with the adapted / the initial prompts (-1: non-finite logits)',
    'correct / correct_initial': 'whether that prediction is the label',
    'confidence / confidence_initial': 'its softmax probability (the top one)',
    'prompt_change.<branch>': 'sqrt(sum over the branch tensors of |theta_a - theta_0|_F^2); all = every tensor',
    'image_shift': '|f_a - f_0|, image feature of view 0 (normalised), adapted minus initial prompts',
    'text_shift.rms': 'sqrt((1/C) sum_c |t_a,c - t_0,c|^2)',
    'text_shift.mean': '|(1/C) sum_c (t_a,c - t_0,c)|, the shift common to all classes',
    'text_shift.pred': '|t_a,y - t_0,y| for the adapted prediction y',
    'consistency.pred': 'cos(t_a,y - t_0,y, f_a - f_0); null when a shift is below min_shift',
    'consistency.mean': 'cos((1/C) sum_c (t_a,c - t_0,c), f_a - f_0); null when a shift is below min_shift',
    'text_spread': '(1/C) sum_c |t_a,c - mean_c t_a,c|^2 of the adapted classifier (initial: in this file)',
    'failed': 'true when the adapted logits or features are not finite (no other numbers then)',
}


def _short(x: float | None) -> float | None:
    """7 significant digits (float32 precision; the file stays small)."""
    return None if x is None else float(f'{x:.7g}')


def _shorten(tree):
    if isinstance(tree, dict):
        return {k: _shorten(v) for k, v in tree.items()}
    return _short(tree) if isinstance(tree, float) else tree


@dataclass
class InitialState:
    """The reference every sample is measured from: the prompts the method binds (its reset state)."""
    params: list[torch.Tensor]          # the learnable tensors, in the method's parameter order
    groups: dict[str, list[int]]        # branch -> positions in ``params`` (the learner's ``branches``)
    names: list[str]
    text: torch.Tensor                  # [C, E] T_0
    vision: Any                         # the initial VisionPrompts (None when images do not depend on prompts)


@HOOKS.register_module()
class AdaptationRecorder(Hook):
    """Args:
        min_shift: shifts shorter than this have no direction (no consistency cosine); see ``measures.MIN_SHIFT``.
        sums_every: save the text-shift sums after this many new samples (and at the end of the run).
    """

    batch_safe = True  # reads the context; its forward of view 0 at the initial prompts (if any) changes nothing

    def __init__(self, min_shift: float = MIN_SHIFT, sums_every: int = 256):
        if not (isinstance(min_shift, (int, float)) and min_shift >= 0):
            raise ConfigError(f'AdaptationRecorder min_shift={min_shift!r} must be a number >= 0',
                              where='custom_hooks AdaptationRecorder.min_shift')
        if isinstance(sums_every, bool) or not isinstance(sums_every, int) or sums_every < 1:
            raise ConfigError(f'AdaptationRecorder sums_every={sums_every!r} must be an integer >= 1',
                              where='custom_hooks AdaptationRecorder.sums_every')
        self.min_shift, self.sums_every = float(min_shift), sums_every
        self.method = None
        self.initial: InitialState | None = None
        self.records: list[dict] = []   # kept only when nothing is written (outside a run)
        self.sums = TextSums()          # this session's samples
        self.work_dir: Path | None = None
        self.tag = layout.ALL
        self._fh = None
        self._session = 0
        self._unsaved = 0
        self._starts_initial: dict[int, bool] = {}     # sample -> its adaptation starts at the initial prompts
        self._initial_image: dict[int, torch.Tensor] = {}  # sample -> f_0 from its first forward

    def attach(self, method) -> 'AdaptationRecorder':
        """Name the method whose samples are recorded (a run finds it on its own)."""
        self.method = method
        return self

    # ------------------------------------------------------------------ the run's files
    def before_run(self, runner) -> None:
        """A fresh run (``--no-resume``) starts without the recording of an earlier one (before any rank writes)."""
        if getattr(runner, 'job', None) != 'test' or runner.resume:
            return
        if runner.owns_work_dir:
            layout.remove_recording(runner.work_dir)
        elif runner.shard_arg is not None:
            layout.remove_recording(runner.work_dir, layout.shard_tag(runner.shard))

    def before_test_epoch(self, runner) -> None:
        method = self._method(runner)
        self.work_dir, self.tag = Path(runner.work_dir), layout.shard_tag(runner.shard)
        records, meta_file = layout.records_path(self.work_dir, self.tag), layout.meta_path(self.work_dir, self.tag)
        fingerprint = getattr(runner, 'fingerprint', None)
        if records.exists():
            recorded = _read_json(meta_file).get('fingerprint')
            if recorded != fingerprint:
                raise ProvenanceError(
                    f'{records} was recorded by another config or other files (fingerprint {recorded}, now '
                    f'{fingerprint})', where=str(records), fix='use another --work-dir, or --no-resume')
        self._capture(method)
        _write_json(meta_file, self._meta(method, fingerprint))
        drop_torn_tail(records)
        self._fh = records.open('a')
        self._session = layout.next_session(self.work_dir, self.tag)
        self.sums, self._unsaved = TextSums(), 0

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._unsaved >= self.sums_every:  # every sample summed so far has its prediction written
            self._save_sums()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._save_sums()
        self._close()

    def after_run(self, runner) -> None:
        self._close()

    def _save_sums(self) -> None:
        if self.work_dir is not None and self.sums.count:
            self.sums.save(layout.sums_path(self.work_dir, self.tag, self._session))
        self._unsaved = 0

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ------------------------------------------------------------------ the samples
    def before_sample(self, runner, ctx) -> None:
        if self.initial is None:
            self._capture(self._method(runner))
        if self.initial.vision is not None:
            self._starts_initial[ctx.index] = bool(self.method.at_initial)

    def after_forward(self, runner, ctx) -> None:
        """With visual prompts: f_0 is row 0 of the sample's first forward, when that ran at the initial prompts
        (an episodic method; else, or without a forward, ``measure`` computes it)."""
        if self._starts_initial.pop(ctx.index, False) and ctx.image_features is not None:
            row = ctx.image_features[0].detach()
            if bool(torch.isfinite(row).all()):  # (the fast engine leaves rows it did not compute NaN)
                self._initial_image[ctx.index] = row.clone()

    def after_predict(self, runner, ctx, result) -> None:
        record = self.measure(ctx, result)
        if self._fh is not None:
            self._fh.write(json.dumps(record) + '\n')
            self._fh.flush()
        else:
            self.records.append(record)

    def measure(self, ctx, result) -> dict:
        """The sample's line (and its text shift added to the sums)."""
        method, initial = self.method, self.initial
        if initial is None:
            raise RuntimeError('AdaptationRecorder.after_predict before any before_sample: the initial prompts are '
                               'unknown')
        try:
            f_a, T_a = ctx.extra['predict_image_feature'], ctx.extra['predict_text_features']
        except KeyError:
            raise RuntimeError(f'{type(method).__name__}.predict did not keep the prediction\'s features in ctx.extra '
                               "('predict_image_feature', 'predict_text_features')") from None
        model = ctx.model
        with torch.no_grad():
            self._starts_initial.pop(ctx.index, None)
            f_0 = f_a if initial.vision is None else self._initial_image.pop(ctx.index, None)
            if f_0 is None:
                f_0 = model.image_features(ctx.views[:1], Prompts(text=None, vision=initial.vision))[0]
            z_0 = model.logits(f_0[None], initial.text)[0]
            z_a = model.logits(f_a[None], T_a)[0].float().cpu()
        finite_0 = bool(torch.isfinite(z_0).all())
        pred_0 = int(z_0.argmax()) if finite_0 else -1
        conf_0 = _short(float(z_0.float().softmax(-1).max())) if finite_0 else None
        rec = dict(index=int(ctx.index), label=int(ctx.label))
        finite = bool(torch.isfinite(result.logits).all()) and bool(torch.isfinite(T_a).all()) and bool(
            torch.isfinite(f_a).all())
        if not finite:
            rec.update(pred=-1, correct=False, confidence=None, pred_initial=pred_0,
                       correct_initial=pred_0 == ctx.label, confidence_initial=conf_0, failed=True)
            return rec
        scale = float(result.logits.abs().max()) + 1.0
        if not torch.allclose(z_a, result.logits.float(), rtol=1e-5, atol=1e-5 * scale):
            raise RuntimeError(f'sample {ctx.index}: the features kept by predict() do not give its logits (max '
                               f'difference {float((z_a - result.logits).abs().max()):.3g})')
        pred = result.pred
        adapted = ctx.prompt_params if ctx.prompt_params is not None else method.params  # steps=0: never moved
        shifts = feature_shifts(f_0, f_a, initial.text, T_a, pred, self.min_shift)
        self.sums.add(ctx.index, T_a - initial.text.to(T_a.device))
        self._unsaved += 1
        confidence = _short(float(result.logits.float().softmax(-1).max()))
        rec.update(pred=pred, correct=pred == ctx.label, confidence=confidence,
                   pred_initial=pred_0, correct_initial=pred_0 == ctx.label, confidence_initial=conf_0,
                   prompt_change=_shorten(branch_change(adapted, initial.params, initial.groups)),
                   image_shift=_short(shifts['image_shift']), text_shift=_shorten(shifts['text_shift']),
                   consistency=_shorten(shifts['consistency']), text_spread=_short(shifts['text_spread']))
        return rec

    # ------------------------------------------------------------------ the initial state
    def _method(self, runner):
        method = self.method
        if method is None:
            method = getattr(getattr(getattr(runner, 'loop', None), 'ev', None), 'method', None)
        if method is None:
            raise RuntimeError('AdaptationRecorder used outside a run: call recorder.attach(method) first')
        needed = ('initial_text_features', 'params', 'param_names', 'learner', 'at_initial')
        if not all(hasattr(method, a) for a in needed):
            raise ConfigError(f'AdaptationRecorder records how a prompt-tuning method moves its prompts; '
                              f'{type(method).__name__} does not tune prompts', where='custom_hooks',
                              fix="use it with tta.type='EpisodicTTA' (TPT, MaPLe+TPT, PromptAlign, PromptSync), or "
                                  'drop it from custom_hooks')
        self.method = method
        return method

    def _capture(self, method) -> None:
        if self.initial is not None:
            return
        if not method.at_initial:
            raise RuntimeError('AdaptationRecorder started while the prompts are not at their initial state')
        learner = method.learner
        snapshot = learner.snapshot()
        groups = {}
        for branch in learner.branches:
            ids = {id(p) for p in learner.branch_parameters(branch)}
            groups[branch] = [i for i, p in enumerate(method.params) if id(p) in ids]
        vision = None
        if learner.has_vision_prompts:
            with torch.no_grad():
                vision = learner().vision
        self.initial = InitialState(params=[snapshot[n] for n in method.param_names], groups=groups,
                                    names=list(method.param_names), text=method.initial_text_features(), vision=vision)

    def _meta(self, method, fingerprint) -> dict:
        init = self.initial
        return dict(format=FORMAT, fingerprint=fingerprint, tag=self.tag, method=type(method).__name__,
                    prompt_learner=type(method.learner).__name__, steps=method.steps,
                    update=getattr(method, 'update', None), classes=int(init.text.shape[0]),
                    embed_dim=int(init.text.shape[1]), vision_prompts=init.vision is not None,
                    branches={b: [init.names[i] for i in idx] for b, idx in init.groups.items()},
                    initial_norm=_shorten(tensor_norms(init.params, init.groups)),
                    initial_text_spread=_short(class_spread(init.text)), min_shift=self.min_shift, fields=FIELDS)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    from promptsync.engine.shards import write_json  # (the engine imports the hooks)
    write_json(path, data)
