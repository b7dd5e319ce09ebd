"""Loading Dassl training checkpoints with ``weights_only=True``: known optimizer/scheduler objects become inert.

A Dassl checkpoint (``prompt_learner/model.pth.tar-N``, ``dassl.utils.torchtools.save_checkpoint``) is
``{'state_dict', 'epoch', 'optimizer', 'scheduler', 'val_result'}``. The optimizer entry is a plain state dict, but
the scheduler entry may hold pickled *objects*: Dassl's ``ConstantWarmupScheduler`` / ``LinearWarmupScheduler`` keep
their ``successor`` (e.g. a ``CosineAnnealingLR``) in ``__dict__``, so its ``state_dict()`` pickles that scheduler
object, its optimizer object (an ``SGD``), and the optimizer's ``defaultdict`` state. PyTorch's weights-only
unpickler refuses those globals, which makes every CoOp/CoCoOp checkpoint with a warmup schedule unreadable.

What this module does, without ever importing or calling the real classes: the pickle's globals are listed
statically first (``torch.serialization.get_unsafe_globals_in_checkpoint``, which disassembles the pickle and runs
nothing). If every global outside PyTorch's own safe set is in :data:`STANDINS`, the file is loaded with
``torch.load(weights_only=True)`` while ``torch.serialization.safe_globals`` maps each such name to an inert
stand-in class (:class:`InertObject`: its instances only store the state the pickle gives them; no method of the
real class exists on them). ``collections.defaultdict`` is replaced by a function that returns a plain ``dict`` and
``builtins.dict`` (the default factory it is given) by ``dict`` itself. Anything else — a global from ``os``,
``builtins.eval``, ``subprocess``, a user class — is refused before a single byte is unpickled, with the names, the
reason and a one-line fix. The stand-ins exist only inside the ``torch.load`` call (a context manager), and only the
tensors of ``state_dict`` are used afterwards.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

#: the globals of a Dassl optimizer/scheduler object that may be replaced by an inert stand-in
STANDINS = (
    'torch.optim.sgd.SGD', 'torch.optim.adam.Adam', 'torch.optim.adamw.AdamW', 'torch.optim.rmsprop.RMSprop',
    'torch.optim.lr_scheduler.CosineAnnealingLR', 'torch.optim.lr_scheduler.StepLR',
    'torch.optim.lr_scheduler.MultiStepLR',
    'dassl.optim.lr_scheduler.ConstantWarmupScheduler', 'dassl.optim.lr_scheduler.LinearWarmupScheduler',
    'dassl.optim.radam.RAdam', 'dassl.optim.radam.PlainRAdam', 'dassl.optim.radam.AdamW',
)
#: containers the optimizer state is pickled with (``defaultdict(dict)``), replaced by plain dicts
CONTAINERS = ('collections.defaultdict', 'builtins.dict')
ALLOWED = STANDINS + CONTAINERS


def resave_command(path: str | os.PathLike) -> str:
    """The one-line command that keeps only the tensors (run where the file was made and is trusted)."""
    out = Path(path).with_name(Path(path).name + '.state_dict.pth')
    return (f"python -c \"import torch; ck = torch.load('{path}', map_location='cpu', weights_only=False); "
            f"torch.save({{'state_dict': ck.get('state_dict', ck), 'epoch': ck.get('epoch')}}, '{out}')\"")


class InertObject:
    """Stands for a pickled optimizer/scheduler object: holds the pickled state, runs nothing of the real class."""

    stands_for = ''

    def __init__(self, *args, **kwargs):  # only reached if a pickle calls the class (REDUCE); keeps the arguments
        self.__dict__['pickled_args'] = args

    def __setstate__(self, state) -> None:  # pickle's BUILD: store, nothing else
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
            self.__dict__.update(slots or {})
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__['pickled_state'] = state

    def __repr__(self) -> str:
        return f'<inert stand-in for {self.stands_for}>'


def _plain_dict(*args, **kwargs) -> dict:
    """``collections.defaultdict(factory)`` -> ``{}`` (the items follow in the pickle)."""
    return {}


def _standins() -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []
    for name in STANDINS:
        cls = type(f'Inert{name.rsplit(".", 1)[1]}', (InertObject,), {'stands_for': name})
        out.append((cls, name))
    return out + [(_plain_dict, 'collections.defaultdict'), (dict, 'builtins.dict')]


class UnsafeGlobalsError(ValueError):
    """A checkpoint whose pickle names globals outside the allow-list (loading it would run their code)."""

    def __init__(self, path, names: list[str]):
        self.names = sorted(names)
        super().__init__(
            f'{path} holds pickled Python objects beyond tensors and is not loaded (promptsync never unpickles '
            f'files): globals {self.names} are not in the allow-list of inert optimizer/scheduler stand-ins '
            f'(unpickling them would import and run their code). Fix: in the environment that wrote it, and only if '
            f'you trust the file, keep only the tensors: {resave_command(path)} and use that file instead')


def unsafe_globals(path: str | os.PathLike) -> list[str] | None:
    """Globals outside PyTorch's weights-only set (static; ``None`` for a file that is not a ``torch.save`` zip)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except (ValueError, RuntimeError):  # legacy (non-zip) format, TorchScript, not a torch file
        return None


def load_with_inert_standins(path: str | os.PathLike) -> tuple[Any, list[str]]:
    """``torch.load(weights_only=True)`` with the allow-listed globals inert; returns ``(object, replaced)``.

    Raises :class:`UnsafeGlobalsError` (nothing unpickled) when a global is outside :data:`ALLOWED`.
    """
    names = unsafe_globals(path)
    if names is None:  # not disassemblable: the plain weights-only loader decides (and refuses any object)
        return torch.load(path, map_location='cpu', weights_only=True), []
    refused = [n for n in names if n not in ALLOWED]
    if refused:
        raise UnsafeGlobalsError(path, refused)
    if not names:
        return torch.load(path, map_location='cpu', weights_only=True), []
    with torch.serialization.safe_globals(_standins()):
        obj = torch.load(path, map_location='cpu', weights_only=True)
    return obj, [n for n in names if n in STANDINS]
