"""Files in and out, for every layer: atomic writes and one-line errors on unreadable arrays.

:func:`write_atomic` is how the package writes every output file (command outputs, emitted Verilog and sidecars,
reports, caches): a temporary name in the same folder, then a rename, so a file is either its old self or complete,
never half-written, whatever fails in between. :func:`load_arrays` reads an ``.npy`` or ``.npz`` file and turns every
way it can be unreadable (missing, a folder, truncated, not NumPy's format, a damaged or non-zip archive, pickled
objects, a header that claims more than memory holds) into a :class:`~int8attn.golden.params.ConfigError` of one line.
"""

import lzma
import os
import tokenize
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from int8attn.golden.params import ConfigError

READ_ERRORS = (OSError, ValueError, EOFError, MemoryError, tokenize.TokenError, zipfile.BadZipFile, zlib.error,
               lzma.LZMAError, NotImplementedError, RuntimeError)
"""What :func:`numpy.load` and reading an ``.npz`` member raise on a file that is not a readable array: ``OSError``
(a missing file, a folder, a damaged bz2 member), ``ValueError`` (a bad header, pickled objects, text that is not
UTF-8), ``EOFError`` (a file cut short), ``MemoryError`` (a header asking for more than there is),
``tokenize.TokenError`` (a header whose brackets do not close), and from :mod:`zipfile` ``BadZipFile``, ``zlib.error``
and ``lzma.LZMAError`` (damaged members), ``NotImplementedError`` (an unknown compression method) and
``RuntimeError`` (a member marked encrypted)."""

Content = bytes | str | Callable[[BinaryIO], object]
"""What :func:`write_atomic` writes: bytes, text (UTF-8), or a function that writes into the open binary file."""


def write_atomic(path: str | os.PathLike, content: Content) -> Path:
    """Write ``content`` to ``path`` through a new temporary file in the same folder and a rename.

    A reader never sees a partial file, and a failure (an exception in ``content``, a full disk, an interrupt) leaves
    ``path`` as it was and removes the temporary file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    content : bytes, str or callable
        The bytes, the text (written as UTF-8), or ``content(file)`` writing into the open binary file (``np.save``,
        ``figure.savefig`` with a ``format``, ...).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The folder cannot be written, or ``path`` is a folder.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            if callable(content):
                content(file)
            else:
                file.write(content.encode() if isinstance(content, str) else content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _reason(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "its header asks for more memory than there is"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"not a readable .npy or .npz file: {type(error).__name__}"


def load_arrays(path: str | os.PathLike, allowed: str) -> np.ndarray | dict[str, np.ndarray]:
    """The array of an ``.npy`` file or the arrays of an ``.npz`` file (by name, every member read).

    Raises
    ------
    ConfigError
        One line naming ``path``, why it cannot be read, and ``allowed`` (what the caller takes): the file is missing
        or a folder, or any of :data:`READ_ERRORS` while reading it.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except FileNotFoundError:
        raise ConfigError(f"{path}: does not exist; allowed: {allowed}") from None
    except READ_ERRORS as error:
        raise ConfigError(f"{path}: cannot be read ({_reason(error)}); allowed: {allowed}") from None
