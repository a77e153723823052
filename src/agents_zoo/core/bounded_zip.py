"""Reading zips that may have been crafted: members inflated within a byte budget, ``.npy``
arrays parsed without pickle and without allocating from their headers.

The archive format (:mod:`agents_zoo.core.serialization`) and the demonstrations' ``.npz``
files are both read through :class:`ZipReader`.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# What a file may make the loader allocate is bounded by the file's own size, never by what the
# file says about itself (a zip's central directory and a .npy header are both written by
# whoever made the file). The bytes inflated from all members together may reach
#
#     default_max_bytes(size) = max(MIN_LOAD_BYTES, min(MAX_INFLATION * size, size + MAX_EXTRA_BYTES))
#
# Measured on files the project writes (inflated bytes / file size):
# - models and checkpoints are stored uncompressed (the zip is only a container): 0.98-0.995
#   (PPO, DQN with its replay buffer, a VAE), so any size passes the ``size + MAX_EXTRA_BYTES``
#   branch, however large the replay buffer in it;
# - the same files saved with ``compress=True``: 1.1-1.4 once trained (float weights and
#   observations barely deflate), 3.2 for a fresh PPO whose Adam moments are all zeros;
# - demonstrations (``np.savez_compressed``): 1.1 (Pendulum) to 2.6 (CartPole, int64 actions),
#   and 41 for ragged episodes (one 500-step CartPole episode among 59 of ~10 steps: the zero
#   padding is most of the file) -- constant data is what deflates well.
# MAX_INFLATION = 64 keeps a margin over that worst layout and stops a deflate bomb (~1000x) at
# a sixteenth of its expansion; MIN_LOAD_BYTES lets any small file of constant data load (that
# ragged file inflates to 0.8 MiB); MAX_EXTRA_BYTES caps what decompression may add on top of
# the file's own size on any machine. ``max_bytes=`` overrides the limit for a file you trust.
MIN_LOAD_BYTES = 64 * 2**20
MAX_INFLATION = 64
MAX_EXTRA_BYTES = 2 * 2**30
# The longest .npy header numpy writes is a few hundred bytes; numpy itself refuses > 10000.
_MAX_NPY_HEADER = 10_000
_CHUNK = 2**20  # bytes inflated per read: a member never inflates more than this at once
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def default_max_bytes(file_size: int) -> int:
    """How many bytes a file of ``file_size`` bytes may inflate to when loaded (see above)."""
    return max(MIN_LOAD_BYTES, min(MAX_INFLATION * file_size, file_size + MAX_EXTRA_BYTES))


class ArchiveError(ValueError):
    """A file is not a valid agents-zoo archive (corrupt, crafted, or of another kind)."""


class PickleRequiredError(ArchiveError):
    """A ``.npy`` member holds Python objects (dtype object), which only pickle could read."""


class ZipReader:
    """Read members of a zip (an archive or an ``.npz``) as bytes or arrays, within a byte budget.

    Nothing the zip declares is trusted for allocation: members are inflated ``_CHUNK`` bytes at
    a time and counted, the count over all members read is held against ``max_bytes``, and a
    ``.npy`` header's shape must account for exactly the bytes that followed it before an array
    is made (the array then shares the member's buffer: no second copy, no allocation from the
    header). Only stored and deflated, unencrypted members are read: other methods (bzip2, lzma)
    cannot be inflated in bounded steps by ``zipfile``. Errors are ``error`` (an ``ArchiveError``
    by default) naming the file; an object array raises ``PickleRequiredError`` for the caller
    to word.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None,
                 error: type[ArchiveError] = ArchiveError, what: str = "a valid agents-zoo archive"):
        self.path = Path(path)
        self.where = repr(str(self.path))
        self.error = error
        if not self.path.is_file():
            raise FileNotFoundError(f"no archive at {str(self.path)!r}")
        self.file_size = self.path.stat().st_size
        self.max_bytes = default_max_bytes(self.file_size) if max_bytes is None else int(max_bytes)
        self.inflated = 0
        try:
            self.zf = zipfile.ZipFile(self.path, "r")
        except Exception as exc:  # noqa: BLE001
            # zipfile parses the central directory with failures beyond BadZipFile: a crafted
            # "version needed" is a NotImplementedError, a bad name encoding a UnicodeDecodeError,
            # ... Reading stops at the file's end, so none of them allocates beyond its size.
            raise error(f"{self.where} is not {what} (not a readable zip: {type(exc).__name__}: {exc})") from None
        try:
            self._check_members()
        except BaseException:
            self.zf.close()
            raise

    def __enter__(self) -> "ZipReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.zf.close()

    def _check_members(self) -> None:
        declared = 0
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in self.zf.infolist():
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise self.error(f"{self.where}: unsafe member path {name!r} in archive")
            self.infos[name] = info
            declared += info.file_size
        # A cheap early refusal; the real limit is enforced on the bytes actually inflated.
        if declared > self.max_bytes:
            raise self.error(
                f"{self.where}: members declare {declared} uncompressed bytes, more than the limit "
                f"{self.max_bytes} for a file of {self.file_size} bytes"
            )

    @property
    def names(self) -> set[str]:
        return set(self.infos)

    def read_bytes(self, member: str, limit: int | None = None) -> bytearray:
        """The member's bytes, inflated in bounded steps and counted against the budget."""
        info = self.infos[member]
        if info.compress_type not in _ZIP_METHODS:
            raise self.error(f"{self.where}: member {member!r} uses zip compression method {info.compress_type}; "
                             f"expected {' or '.join(_ZIP_METHODS.values())}")
        if info.flag_bits & 0x1:
            raise self.error(f"{self.where}: member {member!r} is encrypted; expected a plain member")
        buffer = bytearray()
        try:
            with self.zf.open(info) as handle:
                while True:
                    chunk = handle.read(_CHUNK)
                    if not chunk:
                        break
                    self.inflated += len(chunk)
                    if self.inflated > self.max_bytes:
                        raise self.error(
                            f"{self.where}: members inflate to more than the limit of {self.max_bytes} bytes "
                            f"for a file of {self.file_size} bytes (stopped in {member!r}); "
                            "a zip bomb, or pass a larger max_bytes for a file you trust"
                        )
                    if limit is not None and len(buffer) + len(chunk) > limit:
                        raise self.error(f"{self.where}: member {member!r} is larger than its limit of {limit} bytes")
                    buffer += chunk
        except ArchiveError:
            raise
        except Exception as exc:  # noqa: BLE001
            # BadZipFile (CRC, header mismatch), zlib.error, EOFError, NotImplementedError
            # (patched data), ...: whatever zipfile raises on bytes it did not write. Inflation
            # is bounded by the budget above, so no error here comes from the file's claims.
            raise self.error(f"{self.where}: member {member!r} is corrupt or truncated "
                             f"({type(exc).__name__}: {exc})") from None
        return buffer

    def read_array(self, member: str, label: str) -> np.ndarray:
        """A ``.npy`` member as an array; ``label`` names it in errors (e.g. "array 'w'")."""
        return parse_npy(self.read_bytes(member), f"{self.where}: {label}", self.error)


def parse_npy(raw: bytearray, what: str, error: type[ArchiveError] = ArchiveError) -> np.ndarray:
    """The array in ``.npy`` bytes, without pickle and without allocating from the header.

    The header's shape times the item size must equal the bytes after the header, so a header
    that declares terabytes over a few bytes is refused; the array is a view of ``raw``.
    """
    if bytes(raw[:6]) != b"\x93NUMPY" or len(raw) < 10:
        raise error(f"{what} is not a .npy array (bad magic bytes)")
    head = io.BytesIO(bytes(raw[: 12 + _MAX_NPY_HEADER]))
    try:
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(head, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(head, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]}, expected 1.0 or 2.0")
    except Exception as exc:  # noqa: BLE001
        # numpy parses the header (at most _MAX_NPY_HEADER bytes) with tokenize and
        # ast.literal_eval: besides ValueError and SyntaxError, a crafted one raises
        # tokenize.TokenError, RecursionError (deep parentheses), MemoryError, ... Whatever it
        # raises, the header is not one numpy wrote.
        raise error(f"{what} has a corrupt .npy header ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise PickleRequiredError(f"{what} holds Python objects (dtype {dtype}), which only pickle reads; never loaded")
    if dtype.itemsize == 0:
        raise error(f"{what} has dtype {dtype} of zero item size; expected a numeric or fixed-size dtype")
    offset = head.tell()
    count = math.prod(shape)
    declared, present = count * dtype.itemsize, len(raw) - offset
    if declared != present:
        raise error(f"{what} declares shape {tuple(shape)} of {dtype} ({declared} bytes) but holds {present} "
                    "bytes of data; expected them to match (a truncated or crafted .npy)")
    try:
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        return array.reshape(shape[::-1]).transpose() if fortran_order else array.reshape(shape)
    except (ValueError, TypeError) as exc:  # e.g. a sub-array dtype, which numpy never writes
        raise error(f"{what} of dtype {dtype} and shape {tuple(shape)} cannot be read ({exc})") from None
