"""Test-time adaptation: views, selection, reset policies, optimizers, hooks and methods."""
