"""Update schedules (``UPDATE_SCHEDULES``): which prompt branch each phase of an adaptation step moves.

A step is a list of phases; each phase runs its own forward, loss and optimizer step, and drops the gradient of
the parameters it freezes (their optimizer state stays untouched). Branches are the prompt learner's parameter
groups (``learner.branches``). With MaPLe the vision prompts are produced from the text prompts, so a 'text'
phase moves both branches' prompts and 'vision' moves the couplings only.

Register your own (e.g. a synchronisation schedule) and name it in ``tta.update=dict(type='MySchedule')``;
``tta.update='joint'`` is short for ``dict(type='joint')``.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from promptsync.errors import ConfigError
from promptsync.registry import UPDATE_SCHEDULES


class UpdateSchedule:
    """Base: one phase per branch in ``branches`` ('joint' = every learnable tensor)."""

    branches: Sequence[str] = ('joint',)

    def phases(self, learner, params: Sequence[nn.Parameter]) -> list[tuple[str, list[nn.Parameter]]]:
        """``[(phase name, parameters frozen in that phase), ...]`` for one step."""
        out = []
        for branch in self.branches:
            if branch == 'joint':
                out.append((branch, []))
                continue
            if branch not in learner.branches:
                raise ConfigError(f"update schedule {type(self).__name__} needs a '{branch}' branch; "
                                  f'{type(learner).__name__} has {sorted(learner.branches)}',
                                  where='tta.update', fix="use 'joint', or a prompt learner with that branch")
            keep = {id(p) for p in learner.branch_parameters(branch)}
            out.append((branch, [p for p in params if id(p) not in keep]))
        return out


@UPDATE_SCHEDULES.register_module(name='joint')
class JointUpdate(UpdateSchedule):
    """Every learnable prompt tensor moves at every step (TPT, PromptAlign, PromptSync)."""


@UPDATE_SCHEDULES.register_module(name='text')
class TextUpdate(UpdateSchedule):
    branches = ('text',)


@UPDATE_SCHEDULES.register_module(name='vision')
class VisionUpdate(UpdateSchedule):
    branches = ('vision',)


@UPDATE_SCHEDULES.register_module(name='alternating')
class AlternatingUpdate(UpdateSchedule):
    """Every step is a text update, then a vision update (each with its own forward)."""
    branches = ('text', 'vision')


def build_update_schedule(cfg) -> UpdateSchedule:
    """``'joint'`` or ``dict(type=...)`` -> a schedule."""
    if isinstance(cfg, str):
        if UPDATE_SCHEDULES.get(cfg) is None:
            UPDATE_SCHEDULES.import_from_location()
            names = sorted(UPDATE_SCHEDULES.module_dict)
            raise ConfigError(f"update='{cfg}' is not one of {names}", where='tta.update',
                              fix='pick one, or register your own schedule in UPDATE_SCHEDULES')
        cfg = dict(type=cfg)
    return UPDATE_SCHEDULES.build(dict(cfg))
