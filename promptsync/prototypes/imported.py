"""PromptAlign's released source statistics (``vis_means.pt``, ``vis_vars.pt``) as a prototype bank.

PromptAlign (jameelhassan/PromptAlign, ``trainers/prompt_align.py``) aligns the test views' token statistics to
``self.visual_means`` / ``self.visual_vars``, loaded from ``TPT.VIS_MEANS`` / ``TPT.VIS_VARS`` (the released
``ImgNetpre_vis_means.pt`` / ``ImgNetpre_vis_vars.pt``). Their layout, read from how the loss consumes them:
``[L, T, D]`` — one row per vision block ``l`` (the block's *input*, after the prompt tokens are spliced in; layer 0
= the embeddings after ``ln_pre`` with the 2 shallow MaPLe tokens appended), tokens in the encoder's order
(CLS, the patches, then the prompt tokens: 1 + 196 + 2 = 199 for ViT-B/16), channels ``D`` (768). ``vis_vars`` are
*variances* (the loss compares them with the biased variance of the selected views), not standard deviations.
``distr_align_loss`` reads layers ``range(ALIGN_LAYER_FROM, ALIGN_LAYER_TO - 1)`` = 0 and 1 of its config.

The import gives a one-class bank (``K = 1``, the class-agnostic statistics): exactly what
``DistributionAlignmentLoss`` reads. PromptSync's per-class prototypes (and the visual prototypes) cannot come from
these files — they hold no class information — so a PromptSync config still needs a bank computed here.

A computed bank proves it was made for a config by its fingerprint; an imported one cannot (its numbers came from
PromptAlign's code on its data). Its metadata says so (``origin='imported'``, the two files and their sha256) and
records what the importer checked the shapes against and the user asserted by ``--config``: the backbone, the
prompt learner and the prompt checkpoint (:func:`import_source`). A TTA run accepts the bank when its own config has
the same import source (:func:`check_imported_bank`); the token shapes are checked again by the loss.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

from promptsync.datasets.base import LabelSpace
from promptsync.errors import CorruptFileError, ProvenanceError
from promptsync.utils.files import load_torch_file
from promptsync.utils.hashing import file_sha256
from promptsync.utils.logging import get_logger

from .bank import PrototypeBank

logger = get_logger('prototypes')
ORIGIN = 'imported'
SOURCE_FORMAT = 'promptalign-vis-stats'
#: the model keys an imported bank is bound to (what the statistics depend on and the run can be checked against)
BACKBONE_KEYS = ('type', 'model_name', 'pretrained', 'model_config', 'quick_gelu', 'force_quick_gelu', 'model_kwargs')
FIX = 'python tools/import_source_stats.py VIS_MEANS VIS_VARS DST.safetensors --config CONFIG'


def _hashed(value):
    if isinstance(value, str) and value and Path(value).expanduser().is_file():
        return f'sha256:{file_sha256(Path(value).expanduser())}'
    if isinstance(value, Mapping):
        return {str(k): _hashed(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_hashed(v) for v in value]
    return value


def import_source(model_cfg: Mapping) -> dict:
    """The backbone, prompt learner and prompt checkpoint of a config, files as content hashes."""
    model_cfg = dict(model_cfg)
    backbone = dict(model_cfg.get('backbone') or {})
    return json.loads(json.dumps(dict(
        backbone={k: _hashed(backbone.get(k)) for k in BACKBONE_KEYS if backbone.get(k) is not None},
        prompt_learner=_hashed(dict(model_cfg.get('prompt_learner') or {})),
        prompt_checkpoint=_hashed(model_cfg.get('prompt_checkpoint'))), default=str, sort_keys=True))


def read_promptalign_stats(means_path, vars_path) -> tuple[torch.Tensor, torch.Tensor]:
    """The two tensors (``[L, T, D]``), read with ``weights_only=True``; shapes and signs checked."""
    out = []
    for path, what in ((means_path, 'PromptAlign vis_means'), (vars_path, 'PromptAlign vis_vars')):
        t = load_torch_file(path, what, fix='download the released statistics again (PromptAlign docs/run.md)')
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise CorruptFileError(f'{what} {path} is not a floating-point tensor ({type(t).__name__})',
                                   where=str(path), fix='pass the ImgNetpre_vis_means.pt / ImgNetpre_vis_vars.pt files')
        if t.dim() == 4 and t.shape[1] == 1:  # [L, 1, T, D]: the keepdim of the per-layer means, squeezed
            t = t[:, 0]
        if t.dim() != 3:
            raise CorruptFileError(f'{what} {path} has shape {tuple(t.shape)}; PromptAlign\'s layout is [layers, '
                                   'tokens, channels]', where=str(path), fix='pass the files PromptAlign loads')
        out.append(t.detach().float().contiguous())
    means, variances = out
    if means.shape != variances.shape:
        raise CorruptFileError(f'vis_means {tuple(means.shape)} and vis_vars {tuple(variances.shape)} differ in shape',
                               where=str(vars_path), fix='pass the means and variances of the same release')
    if not bool(torch.isfinite(means).all() and torch.isfinite(variances).all()):
        raise CorruptFileError('the statistics hold non-finite values', where=str(means_path),
                               fix='download the released statistics again')
    if bool((variances < 0).any()):
        raise CorruptFileError(f'{vars_path} has negative entries: these are not variances', where=str(vars_path),
                               fix='pass PromptAlign\'s vis_vars (variances), not another statistic')
    return means, variances


def import_promptalign_stats(means_path, vars_path, layers, expected: Mapping[int, tuple[int, int]],
                             source: Mapping, backbone_name: str, extra: Mapping | None = None) -> PrototypeBank:
    """A one-class bank of ``layers`` from PromptAlign's files; ``expected`` = the config's ``(tokens, width)`` per
    layer (what its prompted vision encoder produces), ``source`` = :func:`import_source` of that config."""
    means, variances = read_promptalign_stats(means_path, vars_path)
    layers = tuple(int(x) for x in layers)
    if max(layers) >= means.shape[0]:
        raise ValueError(f'the statistics have {means.shape[0]} layers; layers {list(layers)} were asked for')
    for layer in layers:
        want = tuple(expected[layer])
        if tuple(means.shape[1:]) != want:
            raise ValueError(
                f'layer {layer}: the statistics are [tokens {means.shape[1]}, width {means.shape[2]}], the config\'s '
                f"backbone '{backbone_name}' with its prompt learner gives [tokens {want[0]}, width {want[1]}] "
                '(tokens = 1 + patches + visual prompt tokens): they were computed for another backbone, image size '
                'or number of prompt tokens')
    space = LabelSpace(('all classes',), None)
    bank = PrototypeBank(layers=layers, mean={lay: means[lay][None].clone() for lay in layers},
                         var={lay: variances[lay][None].clone() for lay in layers},
                         counts=torch.ones(1, dtype=torch.long), visual=None, label_space=space)
    bank.metadata = {k: str(v) for k, v in dict(
        origin=ORIGIN, source_format=SOURCE_FORMAT,
        imported_means=str(Path(means_path).resolve()), imported_means_sha256=file_sha256(means_path),
        imported_vars=str(Path(vars_path).resolve()), imported_vars_sha256=file_sha256(vars_path),
        imported_layers_in_file=str(means.shape[0]), backbone=backbone_name,
        import_source=json.dumps(source, sort_keys=True), per_class='False', images='unknown (imported)',
        counts_note='one class-agnostic row; its count (1) is a weight, not a number of images',
        note='class-agnostic source statistics (PromptAlign); PromptSync\'s per-class and visual prototypes cannot '
             'come from them', **dict(extra or {})).items()}
    return bank


def check_imported_bank(cfg, path, meta: Mapping[str, str], info: dict) -> dict:
    """Accept an imported bank for a run whose backbone / prompt learner / prompt checkpoint are the ones it was
    imported for; a :class:`ProvenanceError` naming what differs otherwise."""
    per_class = [str(loss.get('type')) for loss in ((cfg.get('tta') or {}).get('losses') or [])
                 if 'Prototype' in str(loss.get('type')) and not loss.get('prototypes')]
    if per_class:
        raise ProvenanceError(
            f'the prototype bank {path} holds PromptAlign\'s class-agnostic source statistics (imported from '
            f'{meta.get("imported_means")}); {per_class} need per-class and visual prototypes, which these files do '
            'not have', where='prototypes.file',
            fix='compute the bank for this config: python tools/compute_prototypes.py CONFIG (an imported bank serves '
                'PromptAlign\'s DistributionAlignmentLoss only)')
    recorded = json.loads(meta.get('import_source') or '{}')
    now = import_source(cfg.model)
    if recorded != now:
        diff = [k for k in sorted(set(recorded) | set(now)) if recorded.get(k) != now.get(k)]
        detail = '; '.join(f'{k}: {json.dumps(recorded.get(k), default=str)[:100]} -> '
                           f'{json.dumps(now.get(k), default=str)[:100]}' for k in diff)
        raise ProvenanceError(
            f'the prototype bank {path} was imported ({meta.get("source_format")}, from {meta.get("imported_means")}) '
            f'for another model than this config describes; differs in: {detail}', where='prototypes.file',
            fix=f're-import it for this config: {FIX.replace("CONFIG", str(getattr(cfg, "filename", "CONFIG")))}, '
                'or set prototypes.verify=False to use it anyway (recorded)')
    logger.info('prototype bank %s was imported from %s (sha256 %s): its numbers come from PromptAlign\'s code and '
                'data and cannot be recomputed here; backbone, prompt learner and prompt checkpoint match',
                path, meta.get('imported_means'), meta.get('imported_means_sha256', '')[:12])
    return dict(info, verified='imported', imported_from=[meta.get('imported_means'), meta.get('imported_vars')],
                imported_sha256=[meta.get('imported_means_sha256'), meta.get('imported_vars_sha256')])
