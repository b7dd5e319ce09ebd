"""Trainers (few-shot prompt learning) register into ``promptsync.registry.TRAINERS`` here."""
