"""The shared file helpers: atomic writes and one-line errors on unreadable arrays (:mod:`int8attn.golden.files`)."""

import io
from pathlib import Path

import numpy as np
import pytest

from int8attn.golden.files import load_arrays, write_atomic
from int8attn.golden.params import ConfigError


def test_write_atomic_writes_bytes_text_and_writer_output(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_atomic(tmp_path / "a.txt", "π\n").read_bytes() == "π\n".encode()
    write_atomic(tmp_path / "a.npy", lambda file: np.save(file, np.arange(3)))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.bin", "a.npy", "a.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = write_atomic(tmp_path / "out.npy", b"old")

    def half_then_fail(file: io.BufferedWriter) -> None:
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_fail)
    with pytest.raises(ValueError, match="Object arrays"):
        write_atomic(target, lambda file: np.save(file, np.array([{}], dtype=object), allow_pickle=False))
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["out.npy"]
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path, b"x")
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "x", b"x")
    assert [path.name for path in tmp_path.iterdir()] == ["out.npy"]


def compression_method(archive: bytes, method: int) -> bytes:
    """``archive`` with the compression method of its members set to ``method`` (local and central headers)."""
    changed = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = changed.find(signature)
        while start >= 0:
            changed[start + offset:start + offset + 2] = method.to_bytes(2, "little")
            start = changed.find(signature, start + 4)
    return bytes(changed)


def unreadable(folder: Path) -> dict[str, Path]:
    """Files that are no readable array, by what is wrong with them."""
    good = io.BytesIO()
    np.save(good, np.zeros((2, 8), np.int8))
    archive = io.BytesIO()
    np.savez(archive, x=np.zeros(4))
    data = archive.getvalue()
    header = "{'descr': '|i1', 'fortran_order': False, 'shape': (1000000000000, 64), }"
    header += " " * (63 - len(header) % 64) + "\n"
    files = {
        "cut short": good.getvalue()[:70], "empty": b"", "text": b"rows 1 2 3", "not a zip": b"PK\x03\x04broken",
        "unclosed header": good.getvalue().replace(b"(2,", b"\x002,"),
        "huge header": b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode(),
        "damaged member": data[:40] + bytes(byte ^ 0x55 for byte in data[40:60]) + data[60:],
        "unknown compression": compression_method(data, 99),
    }
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files["pickled objects"] = pickled.getvalue()
    paths = {name: folder / f"{name.replace(' ', '_')}.npy" for name in files}
    for name, content in files.items():
        paths[name].write_bytes(content)
    paths["folder"] = folder
    paths["missing"] = folder / "missing.npy"
    return paths


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    for name, path in unreadable(tmp_path).items():
        try:
            load_arrays(path, "an int8 array")
        except ConfigError as error:
            message = str(error)
        else:
            raise AssertionError(f"{name}: read without an error")
        assert "\n" not in message and message.startswith(f"{path}: ") and message.endswith("allowed: an int8 array"), (
            name, message)
