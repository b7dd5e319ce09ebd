"""User-facing errors: what went wrong, where, and how to fix it.

Every error a user can cause (a bad config key or value, a missing or corrupt file, a run that would mix
results) is a :class:`PromptsyncError`. The tools print its message in a few lines without a traceback (unless
``--debug``) and the Runner writes it, with the traceback, to the run's log file. The subclasses also derive
from the matching builtin (``KeyError``, ``ValueError``, ``FileNotFoundError``, ``RuntimeError``) so callers that
catch those keep working.
"""
from __future__ import annotations


class PromptsyncError(Exception):
    """Args:
        what: one sentence saying what is wrong.
        where: the config key, file or sample concerned (optional).
        fix: what to do about it (optional).
    """

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = str(what), where, fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The multi-line form the tools print and the log records."""
        lines = [self.what]
        if self.where:
            lines.append(f'  where: {self.where}')
        if self.fix:
            lines.append(f'  fix:   {self.fix}')
        return '\n'.join(lines)

    def __str__(self) -> str:  # one line (KeyError would repr() its argument)
        return ' '.join([self.what] + ([f'[where: {self.where}]'] if self.where else []) +
                        ([f'Fix: {self.fix}'] if self.fix else []))


class ConfigError(PromptsyncError, KeyError, ValueError):
    """A config key that does not exist, or a value that cannot be used."""


class ArgumentError(ConfigError, TypeError):
    """A module config passes an argument its class does not take."""


class ResourceError(PromptsyncError, FileNotFoundError):
    """An outside resource (data root, weights, prompt checkpoint, prototype bank) is missing."""


class CorruptFileError(PromptsyncError, ValueError):
    """A file exists but cannot be read (torn, truncated, not the expected format)."""


class ProvenanceError(PromptsyncError, RuntimeError):
    """Resuming or reusing would mix results of different configs or files."""


class DataError(PromptsyncError, RuntimeError):
    """The data cannot give a result (e.g. not one readable image)."""


class LockError(PromptsyncError, RuntimeError):
    """Another process holds the work dir."""


class NonFiniteError(PromptsyncError, FloatingPointError):
    """A loss or logit became NaN or infinite."""


class DistributedError(PromptsyncError, RuntimeError):
    """A distributed run cannot start, or a rank failed."""
