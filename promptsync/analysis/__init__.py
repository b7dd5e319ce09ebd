"""Analysis of the adaptation: what :class:`~promptsync.hooks.adaptation_recorder.AdaptationRecorder` records per
sample (:mod:`.measures`, :mod:`.text_sums`, files in :mod:`.layout`), and the report over one or several runs
(:mod:`.reading`, :mod:`.summary`, :mod:`.report`; ``tools/analyze.py``). Importing the package imports neither
matplotlib nor the engine.
"""
