r"""Files written atomically and JSON read with checks.

:func:`atomic_write` writes beside the target and renames over it after an fsync, so a process killed at
any moment leaves the previous file whole; :func:`read_json` refuses a missing, unreadable or corrupt file
in one line naming it. Nothing made reads is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "atomic_write", "write_json", "read_json", "check_regular", "check_no_links"]


class CheckpointError(ValueError):
    """A run folder or checkpoint that cannot be trusted or read."""


def _umask() -> int:
    """The process's file-creation mask, read without changing it (Linux reports it in /proc);
    elsewhere set and restored once, on the first write rather than at import."""
    global _UMASK
    if _UMASK is None:
        try:
            status = Path("/proc/self/status").read_text()
            _UMASK = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
        except (OSError, StopIteration, ValueError):
            _UMASK = os.umask(0o022)
            os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then fsync and rename over ``path``: never a half-written file.

    The temporary file sits beside ``path`` and ends in the same suffix, so writers
    that go by the extension (numpy, PIL) work unchanged.
    """
    path = Path(path)
    try:
        _replace_atomically(path, write)
    except OSError as err:  # the error names the file the user knows, not its hidden temporary one
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None
    except Exception as err:  # a writer that reports the system's error in words (safetensors' SafetensorError)
        code = _OS_ERROR.search(str(err))
        if code is None:
            raise
        errno = int(code[1])
        raise OSError(errno, os.strerror(errno), str(path)) from None


# How Rust's I/O errors end ("File too large (os error 27)"), as safetensors passes them on.
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _replace_atomically(path: Path, write: Callable[[str], Any]) -> None:
    """Write a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is cut so that a name near the 255-byte limit still has a temporary one (checkpoint names are short).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the file gets the usual permissions
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically; NaN and infinities, which JSON lacks, become null."""
    text = json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_json(path: str | Path) -> dict:
    """Read a JSON object, with a clear error for a missing, unreadable or corrupt file."""
    path = Path(path)
    check_regular(path)
    try:
        data = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def check_regular(path: Path) -> None:
    """Refuse a missing file, and a folder, FIFO or device in a file's place (reading one may never end)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file")


def check_no_links(folder: str | Path) -> None:
    """Refuse a folder with a symbolic link anywhere inside: made writes and deletes in run
    folders and checkpoints, and must never follow a link out of them."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                raise CheckpointError(
                    f"{Path(root) / name}: a symbolic link inside a run folder; made follows "
                    "no links there (replace it with the real file or folder)"
                )


def _refuse_constant(name: str) -> None:
    """Refuse ``NaN`` and ``Infinity`` in a JSON file: they are not JSON."""
    raise ValueError(f"{name} is not JSON")
