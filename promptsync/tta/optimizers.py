"""Optimizers (``OPTIMIZERS``): every ``torch.optim`` optimizer under its class name."""
from __future__ import annotations

import inspect

import torch

from promptsync.registry import OPTIMIZERS

for _name, _cls in inspect.getmembers(torch.optim, inspect.isclass):
    if issubclass(_cls, torch.optim.Optimizer) and _cls is not torch.optim.Optimizer:
        OPTIMIZERS.register_module(name=_name, module=_cls)
