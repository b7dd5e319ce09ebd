"""Reading safetensors and PyTorch files so that a missing or unreadable file names itself.

A truncated or corrupt safetensors file makes ``safetensors`` raise a bare ``SafetensorError`` (and ``torch.load``
an ``EOFError``, ``OSError`` or ``UnpicklingError``) that does not say which file. These helpers raise
:class:`~promptsync.errors.ResourceError` for a missing file and :class:`~promptsync.errors.CorruptFileError`
for one that cannot be read, naming the file, what it should have been (``what``) and how to fix it (``fix``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open

from promptsync.errors import CorruptFileError, ResourceError

def require_file(path: str | os.PathLike, what: str, fix: str | None = None) -> Path:
    """``path`` as a Path; :class:`ResourceError` (``what`` does not exist, ``fix``) when it is not a file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ResourceError(f'{what} {path} does not exist', where=str(path), fix=fix)
    return path


def corrupt_file_error(path: str | os.PathLike, what: str, err: BaseException, fix: str | None = None,
                       kind: str = 'valid file') -> CorruptFileError:
    """The error for ``path`` (a ``what``) that failed to read with ``err``; ``fix`` defaults to re-creating it."""
    detail = (str(err).strip().splitlines() or ['no message'])[0].split('. ')[0][:200]  # its first sentence
    return CorruptFileError(
        f'{what} {path} cannot be read: it is truncated, corrupt or not a {kind} ({type(err).__name__}: {detail})',
        where=str(path), fix=fix or f'delete {path} and re-create it')


def read_safetensors(path: str | os.PathLike, what: str, fix: str | None = None,
                     device: str | torch.device = 'cpu') -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on ``device``) and the string metadata of a safetensors file."""
    path = require_file(path, what)
    try:  # read on CPU: a device problem is not the file's
        with safe_open(str(path), framework='pt') as fh:
            tensors, meta = {key: fh.get_tensor(key) for key in fh.keys()}, dict(fh.metadata() or {})
    except Exception as err:  # SafetensorError, OSError, ...
        raise corrupt_file_error(path, what, err, fix, kind='safetensors file') from err
    return {key: value.to(device) for key, value in tensors.items()}, meta


def read_safetensors_metadata(path: str | os.PathLike, what: str, fix: str | None = None) -> dict[str, str]:
    """The string metadata of a safetensors file (the header is checked against the file size; no tensor is read)."""
    path = require_file(path, what)
    try:
        with safe_open(str(path), framework='pt') as fh:
            return dict(fh.metadata() or {})
    except Exception as err:
        raise corrupt_file_error(path, what, err, fix, kind='safetensors file') from err


def load_torch_file(path: str | os.PathLike, what: str, fix: str | None = None,
                    training_state: bool = False) -> object:
    """``torch.load(path, weights_only=True)`` on CPU: tensors and plain containers, never other Python objects.

    ``training_state=True`` (Dassl checkpoints): the known optimizer/scheduler objects a Dassl checkpoint pickles
    load as inert stand-ins (:mod:`promptsync.utils.inert_globals`); any other global is refused, naming it.
    """
    from promptsync.utils.inert_globals import UnsafeGlobalsError, load_with_inert_standins, resave_command
    path = require_file(path, what)
    try:
        if training_state:
            return load_with_inert_standins(path)[0]
        return torch.load(path, map_location='cpu', weights_only=True)
    except UnsafeGlobalsError as err:
        raise CorruptFileError(f'{what} {str(err).split(". Fix: ")[0]}', where=str(path),
                               fix=str(err).split('. Fix: ')[1]) from err
    except Exception as err:
        if 'Unsupported global' in str(err):  # a well-formed pickle of objects the weights-only loader refuses
            raise CorruptFileError(
                f'{what} {path} holds Python objects beyond tensors and is not loaded (promptsync never unpickles '
                f'files; unpickling them would run their code): '
                f'{str(err).split("Unsupported global:")[-1].strip().splitlines()[0][:200]}',
                where=str(path), fix=f'in an environment you trust, keep only the tensors: {resave_command(path)} '
                                     'and use that file instead') from err
        raise corrupt_file_error(path, what, err, fix, kind='PyTorch file') from err


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                      metadata: dict[str, str] | None = None) -> Path:
    """Write a safetensors file atomically (a temporary file, then a rename) and byte-for-byte reproducibly.

    ``safetensors`` writes its metadata in hash-map order, so the same tensors and metadata saved twice differ in
    their bytes — and in the content hash the provenance records. The header is rewritten with sorted keys (the
    same JSON, same length), so identical content gives an identical file.
    """
    import json
    import struct

    from safetensors.torch import save
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                metadata={str(k): str(v) for k, v in (metadata or {}).items()})
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    canonical = json.dumps(header, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
    if len(canonical) > n:  # never happens for safetensors' compact JSON; keep its own header then
        canonical = data[8:8 + n]
    canonical = canonical.ljust(n, b' ')
    tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as fh:
        fh.write(data[:8] + canonical + data[8 + n:])
    os.replace(tmp, path)
    return path
