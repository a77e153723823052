"""Atomic writes: every file goes to a temporary sibling of its target, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX), so an interrupted write leaves
the previous file intact.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Callable, Iterator

from agents_zoo.core import temporary


@contextlib.contextmanager
def _temporary_sibling(path: Path, suffix: str) -> Iterator[Path]:
    """A temporary file next to ``path``; on success fsync it, rename it over ``path`` and
    fsync the folder (so the rename itself is durable); on failure remove it.

    The temporary is named ``.<name>.<pid>-<host>.<random><suffix>`` (``core.temporary``): a
    process killed mid-write cannot remove its own, so each write first removes the temporaries
    of the same target whose owner process is dead, and only those.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    temporary.remove_stale(path.parent, prefix, suffix)
    tmp = temporary.create_owned_file(path.parent, prefix, suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary sibling of ``path``; on success fsync it and rename it over ``path``."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', got {mode!r}")
    with _temporary_sibling(Path(path), ".tmp") as tmp:
        with open(tmp, mode) as handle:
            yield handle


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line by rewriting the file atomically: a crash leaves the old or the new file."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"  # a torn last line from a foreign writer stays on its own line
    atomic_write_bytes(path, old + line.rstrip("\n").encode("utf-8") + b"\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """For libraries that only write to a path: ``writer(tmp_path)`` then rename over ``path``."""
    path = Path(path)
    with _temporary_sibling(path, path.suffix or ".tmp") as tmp:
        writer(tmp)
