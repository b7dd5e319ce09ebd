"""Package logging on mmengine's ``MMLogger``.

Modules keep ``logger = get_logger('name')`` at import time; the object forwards every call to the logger of the
run in progress — the ``MMLogger`` a Runner opens with :func:`open_run_logger` (stderr + the work dir's
``log.txt``; on ranks other than 0 mmengine shows only errors) — or, outside a run, to a stderr-only
``MMLogger``. Each record is also handed to the standard-library logger of its module (``promptsync.<name>``,
which propagates up to ``promptsync``), so a handler attached there sees it; ``promptsync`` does not propagate to
the root logger (libraries such as open_clip configure the root logger, and every line would print twice). mmengine's duplicate-warning filter is removed: two warnings
with the same format string and different values are two facts.
"""
from __future__ import annotations

import itertools
import logging
import sys

from mmengine.logging import MMLogger

_NAME = 'promptsync'
_std = logging.getLogger(_NAME)
_std.addHandler(logging.NullHandler())  # no 'lastResort' echo when nobody listens
_std.propagate = False
_active: list[MMLogger] = []
_counter = itertools.count()


class _Forward(logging.Handler):
    """Hands each record to the standard-library logger of the module that logged it."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(getattr(record, 'ps_logger', _NAME)).handle(record)


def _new_logger(log_file: str | None, level: str | int) -> MMLogger:
    logger = MMLogger.get_instance(f'{_NAME}-{next(_counter)}', logger_name=_NAME, log_file=log_file,
                                   log_level=level, file_mode='a')
    for handler in logger.handlers:
        handler.filters = [f for f in handler.filters if type(f).__name__ != 'FilterDuplicateWarning']
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setStream(sys.stderr)  # stdout is for tables and results
    forward = _Forward()
    forward.setLevel(level)
    logger.addHandler(forward)
    return logger


def current_logger() -> MMLogger:
    """The run's logger, or the stderr-only package logger outside a run."""
    return _active[-1] if _active else _default


#: created at import, so that mmengine's own messages (``print_log(logger='current')``, e.g. while a config is read)
#: go to stderr through it rather than to a stdout logger mmengine would create
_default = _new_logger(None, 'INFO')


def open_run_logger(log_file: str | None, level: str | int = 'INFO') -> MMLogger:
    """Start logging a run to stderr and ``log_file`` (appended); close it with :func:`close_run_logger`."""
    logger = _new_logger(log_file, level)
    _active.append(logger)
    return logger


def close_run_logger(logger: MMLogger) -> None:
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)
    if logger in _active:
        _active.remove(logger)
    MMLogger._instance_dict.pop(logger.instance_name, None)


class _ModuleLogger:
    """What :func:`get_logger` returns: the usual logging methods, sent to :func:`current_logger`."""

    def __init__(self, name: str):
        self.name = name

    def log(self, level: int, msg, *args, **kwargs) -> None:
        kwargs.setdefault('stacklevel', 3)
        kwargs['extra'] = dict(kwargs.get('extra') or {}, ps_logger=self.name)
        current_logger().log(level, msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs) -> None:
        kwargs.setdefault('exc_info', True)
        self.log(logging.ERROR, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return current_logger().isEnabledFor(level)


def get_logger(name: str | None = None) -> _ModuleLogger:
    """A module's logger (``promptsync.<name>``); it writes to the current run's log."""
    return _ModuleLogger(_NAME if not name else f'{_NAME}.{name}')
