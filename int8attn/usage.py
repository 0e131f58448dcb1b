"""User mistakes outside a unit's parameters, which the command line reports as one line and exit code 2."""

import os
from pathlib import Path


class UsageError(Exception):
    """A user mistake outside a unit's parameters (a file, a folder, a missing tool): one line, exit code 2."""


def output_folder(path: Path) -> Path:
    """``path``, created if needed; :class:`UsageError` when it is a file or cannot be written."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"output folder {path} is an existing file; allowed: a new folder or a writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create output folder {path} ({error.strerror}); allowed: a writable folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {path} is not writable; allowed: a writable folder")
    return path
