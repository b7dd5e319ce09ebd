"""The package logger (plain ``logging``; tools configure handlers)."""
from __future__ import annotations

import logging
import sys

_NAME = 'promptsync'


def get_logger(name: str | None = None) -> logging.Logger:
    """``promptsync`` logger or one of its children (``promptsync.<name>``)."""
    return logging.getLogger(_NAME if not name else f'{_NAME}.{name}')


def setup_logging(level: str | int = 'INFO', log_file: str | None = None) -> logging.Logger:
    """Log to stderr (and to ``log_file`` when given); idempotent."""
    logger = get_logger()
    logger.setLevel(level)
    fmt = logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s', '%H:%M:%S')
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if log_file:
        fh = logging.FileHandler(log_file, mode='a')
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False
    return logger
