"""Figures next to the tables: reliability diagrams, suite bars, ablation grids and training curves (PNG, Agg).

Each module draws one kind of figure from the plain data a run already writes (``predictions.jsonl``,
``benchmark.json``, ``ablation.json``, ``train_log.jsonl``); :func:`~promptsync.visualization.safe.plot_safely`
is how the runs call them, so that a plotting failure is a warning and never costs a table. matplotlib is imported
only when a figure is drawn (a ``Figure`` with its own Agg canvas: no display, no pyplot global state), so importing
this package is free and a missing matplotlib is one more reason a plot is skipped, not a crash. The modules are not
imported here: the suite and ablation plots read helpers of the modules that call them.
"""
